"""The sample page in headless Chromium, clicked through as a person would."""
import os
import time

import pytest
from conftest import headless_chromium
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
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


def open_connected(server, browser):
    """The page from `server`, connected: the wait to use for what follows."""
    wait = WebDriverWait(browser, 15)
    browser.get("http://127.0.0.1:%d/" % server.port)
    browser.find_element(By.ID, "connectButton").click()
    wait.until(lambda d: state(d) == "Open")
    return wait


def close_socket(browser, wait):
    browser.find_element(By.ID, "closeButton").click()
    wait.until(lambda d: state(d) == "Closed")


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
    assert rows[-1] == ["Client", "Server", "Closed by the client. Code: 1000. Reason: Closing from client"]
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
    texts = [r[2] for r in rows]
    # The error event is shown, then the close with its code.
    assert texts[0].startswith("Error:"), rows
    assert any(t.startswith("Connection failed. Code: 1006.") for t in texts), rows
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


def test_binary_echo_keyboard_and_live_regions(echo_server, browser):
    server = echo_server()
    wait = WebDriverWait(browser, 15)
    browser.get("http://127.0.0.1:%d/" % server.port)
    # Screen readers hear the state and the log: both are live regions.
    assert browser.find_element(By.ID, "stateLabel").get_attribute("role") == "status"
    live_log = browser.find_element(By.CSS_SELECTOR, "[role=log]")
    assert live_log.get_attribute("aria-live") == "polite"
    assert live_log.find_elements(By.ID, "commsLog")
    # Enter in the URL field connects, Enter in the message field sends.
    browser.find_element(By.ID, "connectionUrl").send_keys(Keys.ENTER)
    wait.until(lambda d: state(d) == "Open")
    browser.find_element(By.ID, "sendBinary").click()
    box = browser.find_element(By.ID, "sendMessage")
    box.send_keys("hello, binary world" + Keys.ENTER)
    shown = "Binary, 19 bytes: 68 65 6c 6c 6f 2c 20 62 69 6e 61 72 79 20 77 6f \u2026"
    wait.until(lambda d: ["Server", "Client", shown] in log_rows(d))
    assert ["Client", "Server", shown] in log_rows(browser)
    assert "[object" not in " ".join(r[2] for r in log_rows(browser))
    close_socket(browser, wait)


def test_reconnect_after_closing_keeps_state_and_log_right(echo_server, browser):
    wait = open_connected(echo_server(), browser)
    connect = browser.find_element(By.ID, "connectButton")
    browser.find_element(By.ID, "closeButton").click()
    # While the first socket closes, Connect waits for it.
    if state(browser) == "Closing":
        assert not connect.is_enabled()
    wait.until(lambda d: state(d) == "Closed" and connect.is_enabled())
    connect.click()
    wait.until(lambda d: state(d) == "Open")
    browser.find_element(By.ID, "sendMessage").send_keys("second socket" + Keys.ENTER)
    wait.until(lambda d: ["Server", "Client", "second socket"] in log_rows(d))
    time.sleep(0.3)
    # Nothing from the first socket arrived late to relabel the second.
    assert state(browser) == "Open"
    rows = log_rows(browser)
    closes = [r for r in rows if "Closed by" in r[2] or "Connection lost" in r[2]]
    assert closes == [["Client", "Server", "Closed by the client. Code: 1000. Reason: Closing from client"]], rows
    assert [r[2] for r in rows].count("Connection opened") == 2
    os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
    browser.save_screenshot(SCREENSHOT.replace("page.png", "page-reconnect.png"))
    close_socket(browser, wait)


def test_server_close_is_labelled_from_the_server(echo_server, browser):
    # SIGTERM makes the server close every socket with 1001 (going away).
    server = echo_server()
    wait = open_connected(server, browser)
    server.stop()
    wait.until(lambda d: state(d) == "Closed")
    last = log_rows(browser)[-1]
    assert last[0:2] == ["Server", "Client"] and last[2].startswith("Closed by the server. Code: 1001."), last
