"""The webmail's views, one module per topic. Each one parses input, calls one service, renders."""
