# Python 2 (Autobahn|Testsuite's): runs wstest with every listening socket
# bound to 127.0.0.1. In its server modes wstest binds 0.0.0.0, and load tests
# here may only reach loopback.
import sys
from twisted.internet import reactor

_listen = reactor.listenTCP


def listen_on_loopback(port, factory, backlog=50, interface=''):
    return _listen(port, factory, backlog, '127.0.0.1')


reactor.listenTCP = listen_on_loopback

from autobahntestsuite.wstest import run  # noqa: E402 (after the patch on purpose)

sys.exit(run())
