#!/usr/bin/env bash
# Creates the Python environments the external-peer tests need, once:
#   .venv        Python 3: websockets, pytest, selenium, Pillow (interop, page, proxy
#                tests; Pillow reads the screenshots they take)
#   .venv-ab     Python 2.7: Autobahn|Testsuite (it is still Python 2 code)
# Both are reused when present, so a warm machine pays nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/pytest ] || ! .venv/bin/python -c 'import websockets, selenium, pytest, PIL' 2>/dev/null; then
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check \
        'websockets>=15,<18' 'pytest>=8' 'selenium>=4.20' 'uvloop>=0.19' 'pillow>=10'
fi

if [ "${1:-}" = bench ]; then
    .venv/bin/python -c 'import matplotlib' 2>/dev/null || .venv/bin/pip install -q --disable-pip-version-check 'matplotlib>=3.8'
    # redis-py: the Python peer of the fan-out benchmark through Redis.
    .venv/bin/python -c 'import redis' 2>/dev/null || .venv/bin/pip install -q --disable-pip-version-check 'redis==5.2.1'
    exit 0
fi

if [ ! -x .venv-ab/bin/wstest ]; then
    PYROOT=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
    PY27=$(ls -d "$PYROOT"/versions/2.7*/bin/python 2>/dev/null | head -n 1)
    if [ -z "$PY27" ]; then
        echo "setup-python: no Python 2.7 under $PYROOT/versions; Autobahn needs it" >&2
        exit 1
    fi
    python3 -m venv .venv-virtualenv
    .venv-virtualenv/bin/pip install -q --disable-pip-version-check 'virtualenv<20.22'
    .venv-virtualenv/bin/virtualenv -q -p "$PY27" .venv-ab
    # Pinned: the newest versions that still run on Python 2.7 (see docs/conformance.md).
    .venv-ab/bin/pip install -q --disable-pip-version-check \
        autobahntestsuite==25.10.1 autobahn==0.10.9 Twisted==19.10.0 pyOpenSSL==19.1.0 \
        cryptography==3.3.2 txaio==2.1.0 zope.interface==4.6.0 klein==17.10.0 Werkzeug==1.0.1 \
        Jinja2==2.11.3 MarkupSafe==1.1.1 service-identity==18.1.0 unittest2==1.1.0 six==1.16.0 \
        attrs==21.4.0 Automat==22.10.0 constantly==15.1.0 hyperlink==21.0.0 idna==2.10 \
        incremental==16.10.1 ipaddress==1.0.23 enum34==1.1.10 pyasn1==0.5.1 pyasn1-modules==0.3.0 \
        cffi==1.15.1 pycparser==2.21 PyHamcrest==1.10.1 typing==3.10.0.0 ujson==2.0.3 \
        wsaccel==0.6.6 linecache2==1.0.0 traceback2==1.4.0
fi
