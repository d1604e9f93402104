from __future__ import annotations

from django.urls import path

from webmail.views import actions, auth, compose, mailbox, reading, settings

app_name = "webmail"

urlpatterns = [
    path("login/", auth.LoginView.as_view(), name="login"),
    path("logout/", auth.LogoutView.as_view(), name="logout"),
    path("", mailbox.index, name="index"),
    path("folder/<int:folder_id>/", mailbox.folder, name="folder"),
    path("folder/<int:folder_id>/rows/", mailbox.folder_rows, name="folder_rows"),
    path("folder/<int:folder_id>/empty/", actions.empty_folder, name="folder_empty"),
    path("label/<int:label_id>/", mailbox.label, name="label"),
    path("search/", mailbox.search, name="search"),
    path("state/", mailbox.state, name="state"),
    path("message/<int:message_id>/", reading.conversation, name="message"),
    path("message/<int:message_id>/body/", reading.message_body, name="message_body"),
    path("message/<int:message_id>/part/<str:path>/", reading.message_part, name="message_part"),
    path("message/<int:message_id>/raw/", reading.raw_source, name="message_raw"),
    path("message/<int:message_id>/trust/", reading.trust, name="message_trust"),
    path("attachment/<int:attachment_id>/", reading.attachment, name="attachment"),
    path("actions/", actions.act, name="actions"),
    path("actions/undo/", actions.undo, name="undo"),
    path("labels/", actions.label_create, name="label_create"),
    path("labels/<int:label_id>/", actions.label_update, name="label_update"),
    path("compose/", compose.compose_page, name="compose"),
    path("compose/autosave/", compose.autosave, name="autosave"),
    path("compose/upload/", compose.upload, name="upload"),
    path("scheduled/<int:scheduled_id>/cancel/", compose.scheduled_cancel, name="scheduled_cancel"),
    path("scheduled/<int:scheduled_id>/send/", compose.scheduled_send_now, name="scheduled_send"),
    path("settings/", settings.settings_page, name="settings"),
]
