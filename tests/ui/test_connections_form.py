"""The ``integration_http`` type in the real Airflow 3.3 Connections UI, driven in headless Chromium.

Admin -> Connections: the type is offered under its hook name, its form shows the typed fields of
``conn-fields`` and the relabelled standard fields, an OAuth2 client-credentials connection (over mTLS)
filled in the form is stored under the documented extra keys, its secrets come back masked when it is
edited (and survive the edit), and **Test** shows the provider's one-line layered diagnosis, for a
success against the sandbox and for a refused port. Each test saves a screenshot in
``docs/screenshots/``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import Connection
from playwright.sync_api import Locator, Page, expect

from airflow_provider_integrations.get_provider_info import get_provider_info
from airflow_provider_integrations.hooks.http import config_from_connection
from airflow_provider_integrations.sandbox import auth as creds
from airflow_provider_integrations.sandbox.certs import TlsMaterial
from airflow_provider_integrations.sandbox.process import SandboxProcess
from tests.conftest import airflow_cli
from tests.ui.conftest import ApiServer, Ui, screenshot

pytestmark = pytest.mark.slow

expect.set_options(timeout=15_000)

(CONN_TYPE,) = get_provider_info()["connection-types"]
HOOK_NAME: str = CONN_TYPE["hook-name"]
FIELDS: dict[str, Any] = CONN_TYPE["conn-fields"]
PLACEHOLDERS: dict[str, str] = CONN_TYPE["ui-field-behaviour"]["placeholders"]
# The standard fields as designed (README "The integration_http connection type"); none is hidden.
STANDARD_LABELS = {
    "host": "Host or base URL",
    "schema": "Path prefix",
    "login": "Username / client ID / HMAC key ID",
    "password": "Password / token / API key / client secret / HMAC secret",
}
DEFAULTS = {name: spec["schema"].get("default") for name, spec in FIELDS.items()}


# -- page helpers -----------------------------------------------------------------------------------


def open_connections(page: Page, ui: Ui) -> None:
    """Admin -> Connections (a fresh load also clears earlier notifications)."""
    page.goto(f"{ui.base_url}/connections")
    expect(page.get_by_role("button", name="Add Connection")).to_be_visible()


def add_form(page: Page, ui: Ui) -> Locator:
    open_connections(page, ui)
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="Add Connection")).to_be_visible()
    return dialog


def choose_our_type(dialog: Locator) -> None:
    dialog.get_by_role("combobox", name="Connection Type").click()
    dialog.get_by_role("option", name=HOOK_NAME, exact=True).click()
    expect(dialog.get_by_role("button", name="Standard Fields")).to_be_visible()


def expand(dialog: Locator, section: str) -> None:
    """Open one accordion section of the form (the form keeps one open at a time)."""
    button = dialog.get_by_role("button", name=section, exact=True)
    if button.get_attribute("aria-expanded") != "true":
        button.click()
    expect(button).to_have_attribute("aria-expanded", "true")


def field(dialog: Locator, label: str) -> Locator:
    """The form row (label, input, description) whose label is exactly ``label``."""
    return dialog.get_by_role("group").filter(has=dialog.page.get_by_text(label, exact=True))


def select(dialog: Locator, label: str, option: str) -> None:
    row = field(dialog, label)
    row.get_by_role("combobox").click()
    row.get_by_role("option", name=option, exact=True).click()


def fill_extra(dialog: Locator, label: str, value: str) -> None:
    field(dialog, label).locator("input:not([type=hidden]), textarea").fill(value)


def row_of(page: Page, conn_id: str) -> Locator:
    return page.get_by_role("row").filter(has=page.get_by_role("cell", name=conn_id, exact=True))


def submitted(page: Page, action: str) -> Locator:
    """The notification the UI raises once a create/update/delete request has succeeded."""
    return page.get_by_role("status").filter(
        has_text=re.compile(rf"^(Bulk )?{action} Connection Request Submitted")
    )


def save(page: Page, dialog: Locator, conn_id: str) -> None:
    dialog.get_by_role("button", name="Save").click()
    expect(submitted(page, "Create")).to_be_visible()
    expect(dialog).to_be_hidden()
    expect(row_of(page, conn_id)).to_be_visible()


def press_test(page: Page, ui: Ui, conn_id: str) -> Locator:
    """Click the row's **Test** button and return the notification it raises."""
    open_connections(page, ui)
    row_of(page, conn_id).get_by_role("button", name="Test Connection").click()
    toast = page.get_by_role("status").filter(has_text=re.compile("^Test Connection"))
    expect(toast).to_be_visible()
    return toast


def toast_message(toast: Locator, title: str) -> str:
    text = toast.inner_text().strip()
    assert text.startswith(title), text
    return text[len(title) :].strip()


def stored(api_server: ApiServer, conn_id: str) -> dict[str, Any]:
    """The connection as the REST API returns it (secrets masked), ``extra`` parsed."""
    status, body = api_server.request("GET", f"/api/v2/connections/{conn_id}")
    assert status == 200, body
    body["extra"] = json.loads(body["extra"])
    return dict(body)


# -- the type and its form --------------------------------------------------------------------------


def test_type_is_offered_under_its_hook_name(page: Page, ui: Ui) -> None:
    dialog = add_form(page, ui)
    dialog.get_by_role("combobox", name="Connection Type").click()
    options = dialog.get_by_role("option").all_inner_texts()
    assert HOOK_NAME in options, options
    # The official http provider's type stays distinguishable from ours.
    assert "HTTP" in options and options.count(HOOK_NAME) == 1, options
    dialog.get_by_role("option", name=HOOK_NAME, exact=True).hover()
    screenshot(page, "connection-type-dropdown.png")


def test_form_shows_the_typed_fields(page: Page, ui: Ui) -> None:
    dialog = add_form(page, ui)
    choose_our_type(dialog)

    # Standard fields: relabelled, with placeholders, none hidden.
    expect(dialog.get_by_role("textbox", name="Description")).to_be_visible()
    for name, label in STANDARD_LABELS.items():
        box = dialog.get_by_role("textbox", name=label, exact=True)
        expect(box).to_be_visible()
        if name in PLACEHOLDERS:
            expect(box).to_have_attribute("placeholder", PLACEHOLDERS[name])
    expect(dialog.get_by_role("textbox", name=STANDARD_LABELS["password"])).to_have_attribute(
        "type", "password"
    )
    expect(dialog.get_by_role("spinbutton", name="Port")).to_have_attribute(
        "placeholder", PLACEHOLDERS["port"]
    )
    screenshot(page, "connection-form-standard.png")

    expand(dialog, "Extra Fields")
    for name, spec in FIELDS.items():
        row = field(dialog, spec["label"])
        expect(row, f"{name}: no row labelled {spec['label']!r}").to_have_count(1)
        # The row holds the input of this very key (the form stores values under the plain key name).
        expect(row.locator(f"[id=element_{name}], [name=element_{name}]").first).to_be_attached()
        expect(row).to_contain_text(spec["description"])
        check_default(row, name, spec["schema"])

    # ``minimum``/``maximum`` reach the form: out-of-range numbers are clamped when the field loses
    # focus. The form ignores ``exclusiveMinimum``, so the schema gives every "> 0" field a
    # ``minimum: 0`` as well; without it a negative timeout could be saved.
    attempts = field(dialog, FIELDS["retry_max_attempts"]["label"]).get_by_role("spinbutton")
    attempts.fill("0")
    attempts.blur()
    expect(attempts).to_have_value("1")
    timeout = field(dialog, FIELDS["connect_timeout"]["label"]).get_by_role("spinbutton")
    timeout.fill("-5")
    timeout.blur()
    expect(timeout).to_have_value("0")


def check_default(row: Locator, name: str, schema: dict[str, Any]) -> None:
    """The input matches the field's JSON-schema type and shows its default."""
    types = set(schema["type"]) - {"null"}
    default = schema.get("default")
    if "enum" in schema:
        expect(row.locator(f"input[type=hidden][name=element_{name}]")).to_have_value(default or "")
        expect(row).to_contain_text(default or "Select Value")
        combobox = row.get_by_role("combobox")
        combobox.click()
        assert row.get_by_role("option").all_inner_texts() == schema["enum"], name
        # Clicking elsewhere closes the menu (Escape would close the whole dialog).
        row.locator("[data-part=helper-text]").click()
        expect(row.get_by_role("option")).to_have_count(0)
    elif types == {"boolean"}:
        expect(row.get_by_role("checkbox")).to_be_checked(checked=bool(default))
    elif types & {"integer", "number"}:
        box = row.get_by_role("spinbutton")
        expect(box).to_have_value("" if default is None else str(default))
        if "minimum" in schema:
            expect(box).to_have_attribute("aria-valuemin", str(schema["minimum"]))
        if "maximum" in schema:
            expect(box).to_have_attribute("aria-valuemax", str(schema["maximum"]))
    elif types & {"array", "object"}:
        expect(row.get_by_role("code")).to_be_visible()  # a JSON editor
    elif schema.get("format") == "multiline":
        expect(row.locator("textarea")).to_have_value("")
    elif schema.get("format") == "password":
        expect(row.locator("input[type=password]")).to_have_value("")
        expect(row.get_by_role("button", name="Show value")).to_be_visible()
    else:
        expect(row.get_by_role("textbox")).to_have_value(default or "")


# -- an OAuth2 client-credentials connection over mTLS, made in the form ----------------------------


@dataclass(frozen=True)
class SavedConnection:
    conn_id: str
    port: int
    entered: dict[str, Any]  # the extras typed into the form
    tls: TlsMaterial


@pytest.fixture(scope="module")
def oauth2_connection(ui: Ui, sandbox_mtls: SandboxProcess, tls_material: TlsMaterial) -> SavedConnection:
    """Fill and save ``ui_partner_oauth2`` in the browser, the way a user would."""
    conn_id = "ui_partner_oauth2"
    entered: dict[str, Any] = {
        "auth_scheme": "oauth2_client_credentials",
        "oauth2_endpoint": "/oauth/token",
        "oauth2_scopes": "items:read",
        "oauth2_client_auth": "client_secret_post",
        "auth_check_path": "/secure/oauth2/whoami",
        "retry_max_attempts": 5,
        "detailed_timings": True,
        "tls_ca_bundle": tls_material.ca_cert_pem,
        "tls_client_cert": tls_material.client_cert_pem,
    }
    page = ui.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        dialog = add_form(page, ui)
        dialog.get_by_role("textbox", name="Connection ID").fill(conn_id)
        choose_our_type(dialog)
        dialog.get_by_role("textbox", name="Description").fill(
            "Partner API: OAuth2 client credentials over mTLS"
        )
        dialog.get_by_role("textbox", name=STANDARD_LABELS["host"]).fill("127.0.0.1")
        dialog.get_by_role("spinbutton", name="Port").fill(str(sandbox_mtls.port))
        dialog.get_by_role("textbox", name=STANDARD_LABELS["login"]).fill(creds.OAUTH_CLIENT_ID)
        dialog.get_by_role("textbox", name=STANDARD_LABELS["password"]).fill(creds.OAUTH_CLIENT_SECRET)

        expand(dialog, "Extra Fields")
        select(dialog, "Authentication", entered["auth_scheme"])
        select(dialog, "OAuth2 client authentication", entered["oauth2_client_auth"])
        for key in (
            "oauth2_endpoint",
            "oauth2_scopes",
            "auth_check_path",
            "tls_ca_bundle",
            "tls_client_cert",
        ):
            fill_extra(dialog, FIELDS[key]["label"], entered[key])
        fill_extra(dialog, "Max attempts", str(entered["retry_max_attempts"]))
        switch = field(dialog, "Detailed timings")
        switch.locator("[data-scope=switch][data-part=control]").click()  # the input itself is hidden
        expect(switch.get_by_role("checkbox")).to_be_checked()
        # A password input: the browser drops the PEM's line breaks; the provider restores them.
        fill_extra(dialog, FIELDS["tls_client_private_key"]["label"], tls_material.client_key_pem)

        page.set_viewport_size({"width": 1280, "height": 1400})
        dialog.get_by_role("heading", name="Add Connection").scroll_into_view_if_needed()
        screenshot(page, "connection-form.png")
        save(page, dialog, conn_id)
    finally:
        page.close()
    assert not errors, f"uncaught JavaScript errors: {errors}"
    return SavedConnection(conn_id, sandbox_mtls.port, entered, tls_material)


def test_form_stores_the_extras_under_the_documented_keys(
    oauth2_connection: SavedConnection, api_server: ApiServer
) -> None:
    conn = stored(api_server, oauth2_connection.conn_id)
    assert conn["conn_type"] == "integration_http"
    assert (conn["host"], conn["port"], conn["schema"]) == ("127.0.0.1", oauth2_connection.port, None)
    assert conn["login"] == creds.OAUTH_CLIENT_ID
    # Every conn-field under its plain name (no extra__integration_http__ prefix): what was typed,
    # the default of everything else, numbers and booleans as JSON numbers and booleans.
    assert conn["extra"] == {**DEFAULTS, **oauth2_connection.entered, "tls_client_private_key": "***"}
    # Both secrets are redacted by the API.
    assert conn["password"] == "***"


def test_test_button_succeeds_against_the_sandbox(
    page: Page, ui: Ui, oauth2_connection: SavedConnection
) -> None:
    toast = press_test(page, ui, oauth2_connection.conn_id)
    message = toast_message(toast, "Test Connection Successful")
    port = oauth2_connection.port
    assert re.fullmatch(
        rf"Connection OK: DNS [\d.]+ ms \(127\.0\.0\.1\) \| TCP [\d.]+ ms \(127\.0\.0\.1:{port}\) \| "
        r"TLS [\d.]+ ms \(TLSv1\.[23], CN=sandbox\.localhost.*\) \| HTTP [\d.]+ ms \(GET /health 200\) \| "
        r"auth [\d.]+ ms \(oauth2_client_credentials accepted: GET /secure/oauth2/whoami 200\)",
        message,
    ), message
    screenshot(page, "connection-test-ok.png")


def test_edit_masks_the_secrets_and_keeps_them(
    page: Page, ui: Ui, api_server: ApiServer, oauth2_connection: SavedConnection, tmp_path: Path
) -> None:
    conn_id = oauth2_connection.conn_id
    open_connections(page, ui)
    row_of(page, conn_id).get_by_role("button", name="Edit Connection").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="Edit Connection")).to_be_visible()

    expand(dialog, "Standard Fields")
    password = dialog.get_by_role("textbox", name=STANDARD_LABELS["password"])
    expect(password).to_have_value("***")
    expect(dialog.get_by_role("textbox", name=STANDARD_LABELS["login"])).to_have_value(creds.OAUTH_CLIENT_ID)

    expand(dialog, "Extra Fields")
    expect(
        dialog.get_by_text("Redacted fields ('***') will remain unchanged if not modified.").first
    ).to_be_visible()
    key = field(dialog, FIELDS["tls_client_private_key"]["label"])
    expect(key.locator("input[type=password]")).to_have_value("***")
    key.get_by_role("button", name="Show value").click()
    expect(key.locator("input[type=text]")).to_have_value("***")
    # Non-secret PEM text is shown as stored.
    expect(field(dialog, FIELDS["tls_client_cert"]["label"]).locator("textarea")).to_have_value(
        oauth2_connection.tls.client_cert_pem
    )
    key.scroll_into_view_if_needed()
    screenshot(page, "connection-edit-masked.png")

    # Change one field and save: the masked secrets must not be overwritten with "***".
    fill_extra(dialog, FIELDS["oauth2_scopes"]["label"], "items:read items:write")
    dialog.get_by_role("button", name="Save").click()
    expect(submitted(page, "Update")).to_be_visible()
    expect(dialog).to_be_hidden()

    assert stored(api_server, conn_id)["extra"]["oauth2_scopes"] == "items:read items:write"
    # What is really stored, read by the CLI (its JSON export keeps the extra as stored).
    export = tmp_path / "connections.json"
    airflow_cli("connections", "export", str(export))
    real = json.loads(export.read_text())[conn_id]
    assert real["password"] == creds.OAUTH_CLIENT_SECRET
    extra = json.loads(real["extra"])
    assert "".join(extra["tls_client_private_key"].split()) == "".join(
        oauth2_connection.tls.client_key_pem.split()
    )
    # What the hook builds from it: the key's line breaks restored, every extra valid.
    config = config_from_connection(Connection(conn_id=conn_id, **real))
    assert config.base_url == f"https://127.0.0.1:{oauth2_connection.port}"
    assert config.auth.oauth2_scopes == ("items:read", "items:write")
    assert config.auth.oauth2_client_auth == "client_secret_post"
    assert config.tls.client_key_pem == oauth2_connection.tls.client_key_pem


# -- a failing Test, then Delete --------------------------------------------------------------------


#: Nothing listens on port 1 of the loopback address: the README's example of a refused port.
REFUSED_PORT = 1


def test_test_button_shows_the_layered_diagnosis_for_a_refused_port(
    page: Page, ui: Ui, api_server: ApiServer
) -> None:
    conn_id = "ui_partner_down"
    dialog = add_form(page, ui)
    dialog.get_by_role("textbox", name="Connection ID").fill(conn_id)
    choose_our_type(dialog)
    dialog.get_by_role("textbox", name="Description").fill("Partner API, service down")
    dialog.get_by_role("textbox", name=STANDARD_LABELS["host"]).fill("127.0.0.1")
    dialog.get_by_role("spinbutton", name="Port").fill(str(REFUSED_PORT))
    expand(dialog, "Extra Fields")
    select(dialog, "Scheme", "http")
    save(page, dialog, conn_id)

    toast = press_test(page, ui, conn_id)
    message = toast_message(toast, "Test Connection Failed")
    assert "\n" not in message.strip(), message
    assert message.startswith(
        f"TCP connect to 127.0.0.1:{REFUSED_PORT} failed: Connection refused: check the Host and Port "
        "fields and that the service is running and reachable [passed: DNS "
    ), message
    screenshot(page, "connection-test-failed.png")

    # Delete it again: the row goes, and the REST API no longer knows the id.
    row_of(page, conn_id).get_by_role("button", name="Delete Connection").click()
    confirm = page.get_by_role("dialog")
    expect(confirm).to_contain_text(conn_id)
    confirm.get_by_role("button", name="Yes, Delete").click()
    expect(submitted(page, "Delete")).to_be_visible()
    expect(row_of(page, conn_id)).to_have_count(0)
    status, _ = api_server.request("GET", f"/api/v2/connections/{conn_id}")
    assert status == 404
