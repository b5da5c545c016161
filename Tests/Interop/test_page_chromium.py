"""The sample page in headless Chromium, clicked through as a person would."""
import os

import pytest
from conftest import headless_chromium
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

SCREENSHOT = os.path.join(os.path.dirname(__file__), "..", "..", "reports", "page.png")


@pytest.fixture
def browser():
    driver = headless_chromium()
    yield driver
    driver.quit()


def state(driver):
    return driver.find_element(By.ID, "stateText").text


def log_rows(driver):
    return [[c.text for c in row.find_elements(By.TAG_NAME, "td")]
            for row in driver.find_elements(By.CSS_SELECTOR, "#commsLog tr:not(.empty)")]


def test_connect_send_echo_close(echo_server, browser):
    server = echo_server()
    wait = WebDriverWait(browser, 15)
    browser.get("http://127.0.0.1:%d/" % server.port)
    assert state(browser) == "Ready to connect"
    # The URL is prefilled from the page's location.
    assert browser.find_element(By.ID, "connectionUrl").get_attribute("value") == server.url

    browser.find_element(By.ID, "connectButton").click()
    wait.until(lambda d: state(d) == "Open")

    box = browser.find_element(By.ID, "sendMessage")
    box.send_keys("Hello from Chromium <b>not bold</b>")
    browser.find_element(By.ID, "sendButton").click()
    wait.until(lambda d: ["Server", "Client", "Hello from Chromium <b>not bold</b>"] in log_rows(d))
    assert ["Client", "Server", "Hello from Chromium <b>not bold</b>"] in log_rows(browser)
    # Text is shown as text: no element was injected.
    assert not browser.find_elements(By.CSS_SELECTOR, "#commsLog b")

    browser.find_element(By.ID, "closeButton").click()
    wait.until(lambda d: state(d) == "Closed")
    rows = log_rows(browser)
    assert rows[-1][2] == "Connection closed. Code: 1000. Reason: Closing from client"
    os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
    browser.save_screenshot(SCREENSHOT)
    # Nothing on the page came from outside the server.
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(r.startswith("http://127.0.0.1:%d/" % server.port) or r.startswith("ws://127.0.0.1") for r in resources)


def test_refused_handshake_shows_a_hint(echo_server, browser):
    # The page's own origin is not allowed: the server answers 403, which a
    # browser reports only as close code 1006 before the socket opened.
    server = echo_server("--allowed-origin", "http://allowed.example", "--log-level", "debug")
    wait = WebDriverWait(browser, 15)
    browser.get("http://127.0.0.1:%d/" % server.port)
    browser.find_element(By.ID, "connectButton").click()
    wait.until(lambda d: state(d) == "Closed")
    rows = log_rows(browser)
    assert rows[0][2].startswith("Connection closed. Code: 1006."), rows
    hint = rows[-1][2]
    assert hint.startswith("Hint: the connection never opened."), rows
    assert "server's log" in hint and "origin" in hint and "URL" in hint
    assert "status=403" in server.output()
    # The page asked for nothing but itself: no favicon request.
    assert "favicon" not in server.output()


def test_no_hint_after_a_normal_close(echo_server, browser):
    server = echo_server()
    wait = WebDriverWait(browser, 15)
    browser.get("http://127.0.0.1:%d/" % server.port)
    browser.find_element(By.ID, "connectButton").click()
    wait.until(lambda d: state(d) == "Open")
    browser.find_element(By.ID, "closeButton").click()
    wait.until(lambda d: state(d) == "Closed")
    assert not [r for r in log_rows(browser) if r[2].startswith("Hint:")]


def test_page_negotiates_compression(echo_server, browser):
    # Chromium offers permessage-deflate on every connection; with
    # --compression the server accepts, and the echo comes back compressed.
    server = echo_server("--compression", "--log-level", "debug")
    wait = WebDriverWait(browser, 15)
    browser.get("http://127.0.0.1:%d/" % server.port)
    browser.find_element(By.ID, "connectButton").click()
    wait.until(lambda d: state(d) == "Open")
    long_text = ("compressible " * 200).strip()
    for text in ("short", long_text):
        browser.execute_script("document.getElementById('sendMessage').value = arguments[0];", text)
        browser.find_element(By.ID, "sendButton").click()
        wait.until(lambda d: ["Server", "Client", text] in log_rows(d))
    browser.find_element(By.ID, "closeButton").click()
    wait.until(lambda d: state(d) == "Closed")
    opened = [line for line in server.output().splitlines() if "WebSocket open" in line]
    assert len(opened) == 1 and "extension=DeflateExtension" in opened[0], opened
    assert "code=1000" in server.output()
