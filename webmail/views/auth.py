from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache

from webmail.forms import LoginForm


@method_decorator(never_cache, name="dispatch")
class LoginView(auth_views.LoginView):
    """Django's sign-in with throttling in the form (per IP and per username)."""

    form_class = LoginForm
    template_name = "webmail/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass
