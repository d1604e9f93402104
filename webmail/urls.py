from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from webmail import views

app_name = "webmail"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.index, name="index"),
    path("folder/<int:folder_id>/", views.folder, name="folder"),
    path("message/<int:message_id>/", views.message, name="message"),
]
