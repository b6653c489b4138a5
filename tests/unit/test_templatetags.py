"""``{% load offchat_notify %}``: the inbox badge and drop-down, their attributes, the script."""

from __future__ import annotations

import html
import re
from importlib import resources

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured
from django.template import Context, RequestContext, Template, TemplateSyntaxError
from django.test import Client, RequestFactory, override_settings
from django.urls import include, path

from offchat_notify.models import Notification

from .inbox_rows import deliver

pytestmark = pytest.mark.django_db

#: This module is the URLconf of its tests: the inbox under a prefix of the host's choosing.
urlpatterns = [path("deep/inbox/", include("offchat_notify.inbox.urls"))]

TAGS = [
    "{% notification_inbox %}",
    "{% notification_inbox_attrs %}",
    "{% notification_inbox_script %}",
]
PREFIXED = override_settings(ROOT_URLCONF=__name__, STATIC_URL="/assets/")


def render(source: str, user, **context) -> str:
    request = RequestFactory().get("/")
    request.user = user
    template = Template("{% load offchat_notify %}" + source)
    return template.render(RequestContext(request, context))


def attributes(output: str) -> dict[str, str]:
    """The attributes of the element that carries ``data-offchat-inbox``."""
    tag = re.search(r"<[a-z]+ [^>]*data-offchat-inbox[^>]*>", output)
    assert tag, output
    return {
        name: html.unescape(value) for name, value in re.findall(r'([a-z-]+)="([^"]*)"', tag[0])
    }


@pytest.fixture
def alice(make_users):
    return make_users(1)[0]


@PREFIXED
def test_inbox_renders_the_urls_reversed_under_the_hosts_prefix(alice):
    # When
    output = render("{% notification_inbox %}", alice)

    # Then
    found = attributes(output)
    assert found["data-list-url"] == "/deep/inbox/"
    assert found["data-unread-url"] == "/deep/inbox/unread/"
    assert found["data-read-url"] == "/deep/inbox/{id}/read/"
    assert found["data-read-all-url"] == "/deep/inbox/read/"
    assert found["data-stream-url"] == "/deep/inbox/stream/"
    assert found["data-limit"] == "10"
    assert '<script defer src="/assets/offchat_notify/inbox.js"></script>' in output
    assert 'href="/assets/offchat_notify/inbox.css"' in output


@PREFIXED
def test_the_csrf_token_is_one_django_accepts_for_this_request(alice):
    # Given: the page rendered for alice, and the cookie its response sets
    request = RequestFactory().get("/")
    request.user = alice
    output = Template("{% load offchat_notify %}{% notification_inbox %}").render(
        RequestContext(request)
    )
    found = attributes(output)
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    client.cookies[settings.CSRF_COOKIE_NAME] = request.META["CSRF_COOKIE"]

    # When: the script's POST, with the rendered token in X-CSRFToken
    accepted = client.post(found["data-read-all-url"], HTTP_X_CSRFTOKEN=found["data-csrf-token"])
    refused = client.post(found["data-read-all-url"])

    # Then
    assert accepted.status_code == 200, accepted.content
    assert refused.status_code == 403


@PREFIXED
def test_the_badge_shows_the_unread_count_and_hides_at_zero(alice, make_users):
    # Given: nothing yet
    empty = render("{% notification_inbox %}", alice)
    assert re.search(r"data-offchat-badge[^>]*hidden>0</span>", empty)
    assert attributes(empty)["data-unread"] == "0"

    # When: three notifications, one read
    for _ in range(3):
        deliver([alice])
    deliver(make_users(1))  # someone else's
    Notification.objects.for_user(alice).first().mark_read()
    output = render("{% notification_inbox %}", alice)

    # Then
    assert re.search(r'data-offchat-badge title="unread">2</span>', output)
    assert attributes(output)["data-unread"] == "2"


@PREFIXED
def test_a_count_over_99_shows_as_99_plus(alice):
    for _ in range(100):
        deliver([alice])
    assert ">99+</span>" in render("{% notification_inbox %}", alice)


@PREFIXED
def test_arguments_are_escaped(alice):
    # When
    output = render(
        "{% notification_inbox page_url=page limit=5 %}", alice, page='/all/"><script>x()</script>'
    )

    # Then
    assert "<script>x()" not in output
    assert 'href="/all/&quot;&gt;&lt;script&gt;x()&lt;/script&gt;"' in output
    assert attributes(output)["data-limit"] == "5"


@PREFIXED
def test_no_link_to_a_page_unless_given(alice):
    assert "offchat-all" not in render("{% notification_inbox %}", alice)
    assert 'class="offchat-all" href="/inbox/"' in render(
        '{% notification_inbox page_url="/inbox/" %}', alice
    )


@PREFIXED
@pytest.mark.parametrize("limit", [0, 101])
def test_a_limit_the_api_would_refuse_is_an_error(alice, limit):
    with pytest.raises(TemplateSyntaxError, match="limit must be between 1 and 100"):
        render(f"{{% notification_inbox limit={limit} %}}", alice)


@PREFIXED
def test_own_markup_gets_the_attributes_and_the_script(alice):
    # When
    output = render(
        "<nav {% notification_inbox_attrs limit=3 %}></nav>{% notification_inbox_script %}", alice
    )

    # Then
    found = attributes(output)
    assert found["data-stream-url"] == "/deep/inbox/stream/"
    assert found["data-limit"] == "3"
    assert output.endswith('<script defer src="/assets/offchat_notify/inbox.js"></script>')


@PREFIXED
@pytest.mark.parametrize("source", TAGS)
def test_an_anonymous_user_gets_nothing(source):
    assert render(source, AnonymousUser()).strip() == ""


@pytest.mark.parametrize("source", TAGS)
def test_without_the_request_in_the_context_the_error_says_what_to_add(source):
    template = Template("{% load offchat_notify %}" + source)
    with pytest.raises(ImproperlyConfigured, match="context_processors.request"):
        template.render(Context({}))


@pytest.mark.parametrize(
    "name",
    [
        "static/offchat_notify/inbox.js",
        "static/offchat_notify/inbox.css",
        "templates/offchat_notify/inbox.html",
    ],
)
def test_the_client_files_are_in_the_package(name):
    assert resources.files("offchat_notify").joinpath(name).is_file()
