from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from mailcore.services.compose_mime import ComposeError, parse_address_list
from webmail.models import Preferences
from webmail.services import throttle

THROTTLED = "Too many failed sign-in attempts. Try again in 15 minutes."
COLOR_RE = re.compile(r"#[0-9a-fA-F]{6}\Z")


def client_ip(request: Any) -> str:
    return (request.META.get("REMOTE_ADDR") or "unknown") if request is not None else "unknown"


class LoginForm(AuthenticationForm):
    username = forms.CharField(
        label="Email address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )

    def clean_username(self) -> str:
        return self.cleaned_data["username"].strip().lower()

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        ip = client_ip(self.request)
        if throttle.is_login_blocked(ip, username):
            # Checked before the password so a blocked attacker learns nothing more.
            raise ValidationError(THROTTLED, code="throttled")
        try:
            cleaned = super().clean()
        except ValidationError:
            throttle.record_login_failure(ip, username)
            raise
        throttle.clear_login_failures(username)
        return cleaned


class AddressListField(forms.CharField):
    """Comma-separated addresses, validated; cleans to [(name, address)]."""

    def __init__(self, *, lenient: bool = False, **kwargs: Any) -> None:
        self.lenient = lenient
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 20000)
        super().__init__(**kwargs)

    def clean(self, value: Any) -> list[tuple[str, str]]:  # type: ignore[override]
        text = super().clean(value) or ""
        if self.lenient:
            return _lenient_addresses(text)
        try:
            return parse_address_list(text)
        except ComposeError as exc:
            raise ValidationError(str(exc), code="invalid") from exc


def _lenient_addresses(text: str) -> list[tuple[str, str]]:
    """For autosave: keep every address that parses, drop the rest silently."""
    pairs = []
    for chunk in text.replace(";", ",").split(","):
        try:
            pairs.extend(parse_address_list(chunk))
        except ComposeError:
            continue
    return pairs


class ComposeForm(forms.Form):
    sender = forms.ChoiceField(label="From")
    to = AddressListField(label="To")
    cc = AddressListField(label="Cc")
    bcc = AddressListField(label="Bcc")
    subject = forms.CharField(required=False, max_length=998)
    body = forms.CharField(required=False, widget=forms.Textarea, max_length=1_000_000)
    attachment = forms.CharField(required=False)  # tokens come from getlist()
    draft = forms.IntegerField(required=False, widget=forms.HiddenInput)
    in_reply_to = forms.CharField(required=False, widget=forms.HiddenInput, max_length=255)
    references = forms.CharField(required=False, widget=forms.HiddenInput, max_length=20000)
    send_at = forms.DateTimeField(
        required=False,
        label="Send later",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%fZ"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    send_at_utc = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, senders: list[Any], lenient: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        sender = self.fields["sender"]
        assert isinstance(sender, forms.ChoiceField)
        sender.choices = [(s.key, s.label) for s in senders]
        for name in ("to", "cc", "bcc"):
            field = self.fields[name]
            assert isinstance(field, AddressListField)
            field.lenient = lenient
            field.widget.attrs.update({"autocomplete": "email", "spellcheck": "false"})
        self.fields["subject"].widget.attrs["autocomplete"] = "off"

    def clean_send_at_utc(self) -> datetime | None:
        value = (self.cleaned_data.get("send_at_utc") or "").strip()
        if not value:
            return None
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValidationError("Not a valid time.") from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    def scheduled_time(self) -> datetime | None:
        """The "send later" time: the browser's UTC conversion, else the field read as UTC."""
        chosen = self.cleaned_data.get("send_at_utc") or self.cleaned_data.get("send_at")
        if chosen is not None and chosen.tzinfo is None:
            chosen = chosen.replace(tzinfo=UTC)
        return chosen

    def references_list(self) -> list[str]:
        return [ref.strip("<>") for ref in (self.cleaned_data.get("references") or "").split()]


class PreferencesForm(forms.Form):
    display_name = forms.CharField(required=False, max_length=200)
    signature = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}))
    remote_images = forms.ChoiceField(choices=Preferences.RemoteImages.choices)
    page_size = forms.TypedChoiceField(
        coerce=int, choices=[(n, f"{n} messages") for n in Preferences.PAGE_SIZES]
    )
    undo_send_seconds = forms.TypedChoiceField(
        coerce=int,
        label="Undo send",
        choices=[(n, f"{n} seconds" if n else "Off") for n in Preferences.UNDO_SEND_SECONDS],
    )


class IdentityForm(forms.Form):
    address = forms.ChoiceField()
    name = forms.CharField(required=False, max_length=200, label="Display name")

    def __init__(self, *args: Any, addresses: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["address"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(a, a) for a in addresses]


class LabelForm(forms.Form):
    name = forms.CharField(max_length=100)
    color = forms.CharField(
        max_length=7, initial="#6b7280", widget=forms.TextInput(attrs={"type": "color"})
    )
    mailbox = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def clean_color(self) -> str:
        color = self.cleaned_data["color"]
        if not COLOR_RE.match(color):
            raise ValidationError("Use a #rrggbb color.")
        return color.lower()
