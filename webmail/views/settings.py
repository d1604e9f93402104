"""The settings page: preferences, identities, labels, trusted senders, password."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from mailcore import access
from mailcore.models import User
from webmail import access as webmail_access
from webmail.forms import IdentityForm, LabelForm, PreferencesForm
from webmail.models import Identity, TrustedSender
from webmail.services import preferences as service
from webmail.views.common import render_app, user_of


def _password_form(user: User, data: Any = None) -> PasswordChangeForm:
    form = PasswordChangeForm(user, data)
    # Django focuses the old password; on this page that would scroll past everything else.
    form.fields["old_password"].widget.attrs.pop("autofocus", None)
    return form


def _context(user: User, **forms: Any) -> dict[str, Any]:
    preferences = service.get_preferences(user)
    own = access.mailboxes_for_user(user).filter(user=user).first()
    taken = set(Identity.objects.filter(user=user).values_list("address", flat=True))
    addresses = [a for a, _ in service.available_aliases(user) if a not in taken]
    context = {
        "title": "Settings",
        "preferences_form": PreferencesForm(
            initial={
                "display_name": own.display_name if own else "",
                "signature": preferences.signature,
                "remote_images": preferences.remote_images,
                "page_size": preferences.page_size,
                "undo_send_seconds": preferences.undo_send_seconds,
            }
        ),
        "identity_form": IdentityForm(addresses=addresses),
        "identities": Identity.objects.filter(user=user).order_by("address"),
        "password_form": _password_form(user),
        "label_form": LabelForm(),
        "labels": access.labels_for_user(user).select_related("mailbox").order_by("name"),
        "trusted": TrustedSender.objects.filter(user=user).order_by("address"),
        "own_mailbox": own,
    }
    context.update(forms)
    return context


@login_required
def settings_page(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    if request.method != "POST":
        return render_app(request, "webmail/settings.html", _context(user))
    section = request.POST.get("section", "")
    if section == "preferences":
        form = PreferencesForm(request.POST)
        if not form.is_valid():
            return render_app(
                request, "webmail/settings.html", _context(user, preferences_form=form), 400
            )
        try:
            service.update_preferences(user, **form.cleaned_data)
        except service.PreferencesError as exc:
            form.add_error(None, str(exc))
            return render_app(
                request, "webmail/settings.html", _context(user, preferences_form=form), 400
            )
        messages.success(request, "Settings saved.")
    elif section == "identity_add":
        taken = set(Identity.objects.filter(user=user).values_list("address", flat=True))
        addresses = [a for a, _ in service.available_aliases(user) if a not in taken]
        identity_form = IdentityForm(request.POST, addresses=addresses)
        if not identity_form.is_valid():
            return render_app(
                request, "webmail/settings.html", _context(user, identity_form=identity_form), 400
            )
        try:
            service.add_identity(
                user, identity_form.cleaned_data["address"], identity_form.cleaned_data["name"]
            )
        except service.PreferencesError as exc:
            messages.error(request, str(exc))
            return redirect("webmail:settings")
        messages.success(request, "Identity added.")
    elif section == "identity_remove":
        identity_id = request.POST.get("identity", "")
        identity = webmail_access.get_identity_for_user(
            user, int(identity_id) if identity_id.isdigit() else 0
        )
        service.remove_identity(identity)
        messages.success(request, f"Identity {identity.address} removed.")
    elif section == "trusted_remove":
        service.untrust_sender(user, request.POST.get("address", ""))
        messages.success(request, "Sender removed.")
    elif section == "password":
        password_form = _password_form(user, request.POST)
        if not password_form.is_valid():
            return render_app(
                request, "webmail/settings.html", _context(user, password_form=password_form), 400
            )
        password_form.save()
        update_session_auth_hash(request, password_form.user)
        messages.success(request, "Password changed.")
    return redirect("webmail:settings")
