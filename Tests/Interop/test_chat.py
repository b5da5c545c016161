"""The chat sample on two servers sharing one Redis, which each test starts
itself on a free port (never the system's instance): rooms across servers,
Redis going away and coming back, no self-echo, sharded pub/sub, passwords,
and the page in headless Chromium."""
import asyncio
import json
import os
import re
import signal
import subprocess
import time

import pytest
import websockets

from conftest import free_port, headless_chromium

CHAT_SERVER = os.environ.get("CHAT_SERVER", os.path.join(os.path.dirname(__file__), "..", "..", ".build", "release", "chat-server"))
REPORTS = os.path.join(os.path.dirname(__file__), "..", "..", "reports")


class Redis:
    def __init__(self, tmp_path, password=None):
        self.port = free_port()
        self.password = password
        self.dir = tmp_path
        self.proc = None
        self.start()

    def start(self):
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.dir)]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.cli("PING").strip() in ("PONG", "NOAUTH Authentication required."):
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def cli(self, *args):
        auth = ["-a", self.password, "--no-auth-warning"] if self.password else []
        result = subprocess.run(["redis-cli", "-p", str(self.port), *auth, *args], capture_output=True, text=True)
        return result.stdout

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)

    def url(self, db=0, password=None):
        login = ":%s@" % password if password else ""
        return "redis://%s127.0.0.1:%d/%d" % (login, self.port, db)


class Chat:
    def __init__(self, *args, port=None):
        self.port = port or free_port()
        self.log_path = "/tmp/chat-server-%d.log" % self.port
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen([CHAT_SERVER, "--host", "127.0.0.1", "--port", str(self.port), *args],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            if "listening on" in self.output():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("chat-server did not start: " + self.output())

    def url(self, room, name="t"):
        return "ws://127.0.0.1:%d/ws?room=%s&name=%s" % (self.port, room, name)

    def output(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None

    def figures(self):
        """The backplane's figures from its 'stopped' line (after stop())."""
        line = [l for l in self.output().splitlines() if "redis backplane stopped" in l][-1]
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


@pytest.fixture
def redis(tmp_path):
    servers = []

    def start(password=None):
        server = Redis(tmp_path, password)
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


@pytest.fixture
def chat():
    servers = []

    def start(*args, port=None):
        server = Chat(*args, port=port)
        servers.append(server)
        return server

    yield start
    for s in servers:
        code = s.stop()
        assert code == 0, "chat-server exit status %r\n%s" % (code, s.output())


def chat_messages(frames):
    """The chat messages among what a client received: not the JSON notices,
    nor the probes that waited for the servers to subscribe."""
    return [f for f in frames if is_chat(f)]


def is_chat(frame):
    return not frame.startswith("{") and not frame.startswith("probe:")


async def drain(ws, want=None, timeout=20, probe=None):
    """Receives until `want` chat messages (or a frame starting with `probe`)
    have come, or the time is up; everything received, in order."""
    frames = []
    count = 0

    async def receive():
        nonlocal count
        while want is None or count < want:
            frame = await ws.recv()
            frames.append(frame)
            count += is_chat(frame)
            if probe and frame.startswith(probe):
                return

    try:
        await asyncio.wait_for(receive(), timeout)
    except asyncio.TimeoutError:
        pass
    return frames


async def settle(ws_from, ws_to, tag):
    """Sends probes until one crosses (each server has subscribed in Redis)."""
    for i in range(100):
        await ws_from.send("probe:%s:%d" % (tag, i))
        frames = await drain(ws_to, timeout=0.2, probe="probe:%s" % tag)
        if any(x.startswith("probe:%s" % tag) for x in frames):
            return
    raise AssertionError("no probe crossed between the servers")


def test_rooms_across_two_servers(redis, chat):
    r = redis()
    a = chat("--loops", "2", "--redis", r.url())
    b = chat("--loops", "2", "--redis", r.url())

    async def scenario():
        room_a = [await websockets.connect((a if i % 2 else b).url("alpha", "a%d" % i)) for i in range(40)]
        room_b = [await websockets.connect((a if i % 2 else b).url("beta", "b%d" % i)) for i in range(10)]
        await settle(room_a[0], room_a[1], "alpha-ab")
        await settle(room_a[1], room_a[0], "alpha-ba")
        await settle(room_b[0], room_b[1], "beta-ab")
        await settle(room_b[1], room_b[0], "beta-ba")
        for ws in room_a + room_b:
            await drain(ws, timeout=0.3)  # probes and notices so far

        async def send_all(clients, room):
            for n in range(50):
                for i, ws in enumerate(clients):
                    await ws.send("%s:%d:%d" % (room, i, n))

        await asyncio.gather(send_all(room_a, "alpha"), send_all(room_b, "beta"))
        got_a = await asyncio.gather(*[drain(ws, want=2000) for ws in room_a])
        got_b = await asyncio.gather(*[drain(ws, want=500) for ws in room_b])
        for ws in room_a + room_b:
            await ws.close()
        return got_a, got_b

    got_a, got_b = asyncio.run(scenario())
    for frames, room, senders in [(f, "alpha", 40) for f in got_a] + [(f, "beta", 10) for f in got_b]:
        messages = chat_messages(frames)
        # Exactly once, nothing from the other room, each sender's in order.
        assert len(messages) == senders * 50, (room, len(messages))
        assert all(m.startswith(room + ":") for m in messages)
        assert len(set(messages)) == len(messages)
        for sender in range(senders):
            mine = [int(m.split(":")[2]) for m in messages if m.split(":")[1] == str(sender)]
            assert mine == list(range(50)), (room, sender)
    for server in (a, b):
        assert server.stop() == 0
        figures = server.figures()
        assert figures["notCarried"] == 0 and figures["missed"] == 0


def test_redis_away_and_back(redis, chat):
    r = redis()
    a = chat("--loops", "2", "--redis", r.url())
    b = chat("--loops", "2", "--redis", r.url())

    async def scenario():
        on_a = [await websockets.connect(a.url("room", "a%d" % i)) for i in range(2)]
        on_b = await websockets.connect(b.url("room", "b"))
        await settle(on_a[0], on_b, "before")
        await settle(on_b, on_a[0], "before-back")
        for ws in on_a + [on_b]:
            await drain(ws, timeout=0.3)
        r.stop()
        await asyncio.sleep(0.5)
        # Redis is away: local delivery goes on.
        for n in range(20):
            await on_a[0].send("away:%d" % n)
        local = await drain(on_a[1], want=20, timeout=5)
        remote = await drain(on_b, timeout=1)
        await asyncio.sleep(1.5)
        r.start()
        # Both servers reconnect and subscribe again; messages cross again.
        await settle(on_a[0], on_b, "after")
        await settle(on_b, on_a[0], "after-back")
        for ws in on_a + [on_b]:
            await ws.close()
        return local, remote

    local, remote = asyncio.run(scenario())
    assert chat_messages(local) == ["away:%d" % n for n in range(20)]
    assert not [m for m in chat_messages(remote) if m.startswith("away")]
    assert a.stop() == 0 and b.stop() == 0
    fa, fb = a.figures(), b.figures()
    assert fa["notCarried"] >= 20, fa
    assert fa["reconnects"] >= 1 and fb["reconnects"] >= 1
    # B saw the sequence jump over what A could not carry.
    assert fb["missed"] >= 20, fb
    assert "Redis is away" in a.output() and "Redis is back" in a.output()


def test_no_self_echo_and_one_publish_per_message(redis, chat):
    r = redis()
    a = chat("--loops", "2", "--redis", r.url())
    b = chat("--redis", r.url())

    async def scenario():
        sender = await websockets.connect(a.url("quiet", "s"))
        same_server = await websockets.connect(a.url("quiet", "t"))
        other = await websockets.connect(b.url("quiet", "u"))
        await settle(sender, other, "x")
        await settle(other, sender, "y")
        for ws in (sender, same_server, other):
            await drain(ws, timeout=0.3)
        monitor = subprocess.Popen(["redis-cli", "-p", str(r.port), "monitor"], stdout=subprocess.PIPE, text=True)
        await asyncio.sleep(0.3)
        for n in range(30):
            await sender.send("m:%d" % n)
        got = await asyncio.gather(*[drain(ws, want=30, timeout=10)
                                     for ws in (sender, same_server, other)])
        await asyncio.sleep(0.3)
        monitor.terminate()
        lines = monitor.communicate(timeout=5)[0].splitlines()
        for ws in (sender, same_server, other):
            await ws.close()
        return got, lines

    got, lines = asyncio.run(scenario())
    for frames in got:
        assert chat_messages(frames) == ["m:%d" % n for n in range(30)]
    publishes = [l for l in lines if '"PUBLISH"' in l and "m:" in l]
    assert len(publishes) == 30, publishes[:5]
    assert a.stop() == 0
    assert a.figures()["ownDropped"] >= 30


def test_sharded_pubsub(redis, chat):
    r = redis()
    a = chat("--redis", r.url(), "--sharded")
    b = chat("--redis", r.url(), "--sharded")

    async def scenario():
        x = await websockets.connect(a.url("shard"))
        y = await websockets.connect(b.url("shard"))
        await settle(x, y, "s1")
        await settle(y, x, "s2")
        # Both servers hold the room as a shard channel, not a plain one.
        sharded = r.cli("PUBSUB", "SHARDNUMSUB", "uvws:0:room:shard").split()
        plain = r.cli("PUBSUB", "NUMSUB", "uvws:0:room:shard").split()
        await x.close()
        await y.close()
        return sharded, plain

    sharded, plain = asyncio.run(scenario())
    assert sharded == ["uvws:0:room:shard", "2"], sharded
    assert plain == ["uvws:0:room:shard", "0"], plain
    for server in (a, b):
        assert server.stop() == 0


def test_password_and_database(redis, chat, tmp_path):
    r = redis(password="s3cret")
    wrong = subprocess.run([CHAT_SERVER, "--port", "0", "--redis", r.url(password="nope")],
                           capture_output=True, text=True, timeout=20)
    assert wrong.returncode == 1
    assert "refused the password" in wrong.stderr
    a = chat("--redis", r.url(db=3, password="s3cret"))
    b = chat("--redis", r.url(db=3, password="s3cret"))
    other_db = chat("--redis", r.url(db=4, password="s3cret"))

    async def scenario():
        x = await websockets.connect(a.url("db"))
        y = await websockets.connect(b.url("db"))
        z = await websockets.connect(other_db.url("db"))
        await settle(x, y, "db")
        # Another database is another deployment: it hears nothing.
        heard = await drain(z, timeout=0.5)
        for ws in (x, y, z):
            await ws.close()
        return heard

    heard = asyncio.run(scenario())
    assert not [m for m in chat_messages(heard) if m.startswith("probe")]


def test_bad_room_is_400(chat):
    server = chat()

    async def scenario():
        for query in ("", "?room=", "?room=no%20spaces", "?room=" + "x" * 65):
            with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
                await websockets.connect("ws://127.0.0.1:%d/ws%s" % (server.port, query))
            assert refused.value.response.status_code == 400
            assert b"room" in refused.value.response.body

    asyncio.run(scenario())


@pytest.fixture
def browsers():
    made = []

    def make():
        driver = headless_chromium(900, 700)
        made.append(driver)
        return driver

    yield make
    for driver in made:
        driver.quit()


def test_pages_on_two_servers(redis, chat, browsers):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    r = redis()
    a = chat("--redis", r.url())
    b = chat("--redis", r.url())
    pages = {}
    for who, server in (("ann", a), ("bob", b)):
        page = browsers()
        page.get("http://127.0.0.1:%d/" % server.port)
        name = page.find_element(By.ID, "name")
        name.clear()
        name.send_keys(who)
        page.find_element(By.ID, "joinButton").click()
        WebDriverWait(page, 10).until(lambda d: "Connected to room lobby as %s" % who in d.find_element(By.ID, "status").text)
        pages[who] = page
    # Both servers hold the room in Redis before anyone speaks.
    deadline = time.time() + 10
    while r.cli("PUBSUB", "NUMSUB", "uvws:0:room:lobby").split()[-1:] != ["2"] and time.time() < deadline:
        time.sleep(0.05)

    def log(page):
        return page.find_element(By.ID, "log").text

    pages["ann"].find_element(By.ID, "text").send_keys("hello from ann" + Keys.ENTER)
    WebDriverWait(pages["bob"], 10).until(lambda d: "ann: hello from ann" in log(d))
    pages["bob"].find_element(By.ID, "text").send_keys("hi ann, bob here" + Keys.ENTER)
    WebDriverWait(pages["ann"], 10).until(lambda d: "bob: hi ann, bob here" in log(d))
    assert "bob joined lobby" in log(pages["ann"])
    # Roles the page gives assistive technology.
    assert pages["ann"].find_element(By.ID, "log").get_attribute("role") == "log"
    assert pages["ann"].find_element(By.ID, "status").get_attribute("aria-live") == "polite"

    # Bob's server restarts: his page says so and reconnects by itself.
    port = b.port
    assert b.stop() == 0
    WebDriverWait(pages["bob"], 10).until(lambda d: "Reconnecting" in d.find_element(By.ID, "status").text)
    b2 = chat("--redis", r.url(), port=port)
    WebDriverWait(pages["bob"], 30).until(lambda d: "Reconnected to room lobby as bob" in d.find_element(By.ID, "status").text)
    WebDriverWait(pages["ann"], 10).until(lambda d: log(d).count("bob joined lobby") == 2)
    deadline = time.time() + 10
    while r.cli("PUBSUB", "NUMSUB", "uvws:0:room:lobby").split()[-1:] != ["2"] and time.time() < deadline:
        time.sleep(0.05)
    pages["ann"].find_element(By.ID, "text").send_keys("welcome back" + Keys.ENTER)
    WebDriverWait(pages["bob"], 10).until(lambda d: "ann: welcome back" in log(d))
    os.makedirs(REPORTS, exist_ok=True)
    pages["ann"].save_screenshot(os.path.join(REPORTS, "chat-ann.png"))
    pages["bob"].save_screenshot(os.path.join(REPORTS, "chat-bob.png"))
    # Nothing on the page came from outside the server.
    for page, server in ((pages["ann"], a), (pages["bob"], b2)):
        resources = page.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert all(url.startswith("http://127.0.0.1:%d/" % server.port) for url in resources), resources
