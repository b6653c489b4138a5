"""Role resolvers: GroupRoles (default), FieldRoles, FlagRoles, and custom ones."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.models import Q
from django.test import override_settings

from offchat_notify import Audience, NotifyConfigurationError, UnknownRole, notify
from offchat_notify.models import Notification
from offchat_notify.roles import BaseRoles, FieldRoles, GroupRoles, Window, get_role_resolver

pytestmark = pytest.mark.django_db(transaction=True)


def delivered_to(event) -> list[int]:
    return sorted(Notification.objects.filter(event=event).values_list("recipient_id", flat=True))


def test_group_roles_is_the_default():
    assert type(get_role_resolver()) is GroupRoles


def test_group_roles_knows_existing_groups_only():
    Group.objects.create(name="admin")
    resolver = GroupRoles()
    assert resolver.known("admin")
    assert not resolver.known("ghosts")


@override_settings(
    OFFCHAT_NOTIFY={"BACKEND": "sync", "ROLE_RESOLVER": "offchat_notify.roles.FieldRoles"}
)
def test_field_roles_uses_the_field_and_its_choices(make_users):
    admins = make_users(2, role="admin")
    make_users(2, role="member")
    event = notify(Audience.role("admin"), "x")
    assert delivered_to(event) == [u.pk for u in admins]
    with pytest.raises(UnknownRole, match="Unknown role 'owner' for FieldRoles"):
        notify(Audience.role("owner"), "x")


@override_settings(
    OFFCHAT_NOTIFY={
        "BACKEND": "sync",
        "ROLE_RESOLVER": "offchat_notify.roles.FieldRoles",
        "ROLE_RESOLVER_OPTIONS": {"field": "last_name", "roles": ["ops"]},
    }
)
def test_field_roles_options(make_users):
    ops = make_users(2, last_name="ops")
    assert delivered_to(notify(Audience.role("ops"), "x")) == [u.pk for u in ops]
    with pytest.raises(UnknownRole):
        notify(Audience.role("dev"), "x")


def test_field_roles_on_a_field_the_user_model_lacks():
    with pytest.raises(NotifyConfigurationError, match="has no field 'rank'"):
        FieldRoles(field="rank", roles=["x"])


@override_settings(
    OFFCHAT_NOTIFY={"BACKEND": "sync", "ROLE_RESOLVER": "offchat_notify.roles.FlagRoles"}
)
def test_flag_roles(make_users):
    supers = make_users(2, is_superuser=True)
    staff = make_users(1, is_staff=True)
    assert delivered_to(notify(Audience.role("admin"), "x")) == [u.pk for u in supers]
    assert delivered_to(notify(Audience.role("staff"), "x")) == [u.pk for u in staff]
    with pytest.raises(UnknownRole, match="FlagRoles knows admin, staff, superuser"):
        notify(Audience.role("owner"), "x")


class VipRoles(BaseRoles):
    def known(self, role):
        return role == "vip"

    def filter(self, role):
        return Q(username__startswith="vip")


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "ROLE_RESOLVER": f"{__name__}.VipRoles"})
def test_a_custom_resolver(make_users, django_user_model):
    vip = django_user_model.objects.create(username="vip-1")
    make_users(2)
    assert delivered_to(notify(Audience.role("vip"), "x")) == [vip.pk]


def test_resolvers_refuse_unknown_options():
    with pytest.raises(NotifyConfigurationError, match="GroupRoles takes no option 'field'"):
        GroupRoles(field="x")


def test_group_pages_bound_the_membership_subquery_and_use_the_group_id(make_users):
    # Each page of a large role costs the same: the page's lower bound reaches
    # the membership subquery, and the group is named by id (so the planner
    # knows its size), not joined by name.
    from django.contrib.auth import get_user_model

    make_users(3, group="admin")
    group_id = Group.objects.get(name="admin").pk
    q = GroupRoles().page("admin", Window(41, 100)).q
    sql, params = get_user_model().objects.filter(q).query.sql_with_params()
    assert "auth_group" not in sql
    assert group_id in params
    if connection.vendor != "sqlite":  # where the bound helps (see GroupRoles.page)
        assert '"user_id" > ' in sql and 41 in params
