# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Shared by the Python tests: they run against the build tree's typelib and
# overrides (see meson.build for the environment).

import os
import time

import gi

gi.require_version('Ctok', '1.0')
gi.require_version('GLib', '2.0')
gi.require_version('Gio', '2.0')

import pytest  # noqa: E402
from gi.repository import GLib  # noqa: E402


def run_until(condition, timeout_ms=5000, context=None):
    """Iterates ``context`` (default: the global default one) until
    ``condition()`` is true; fails the test after ``timeout_ms``."""
    context = context or GLib.MainContext.default()
    deadline = GLib.get_monotonic_time() + timeout_ms * 1000
    while not condition():
        if GLib.get_monotonic_time() > deadline:
            pytest.fail('timed out after %d ms' % timeout_ms)
        if not context.iteration(False):
            time.sleep(0.001)


def drain(context=None):
    """Dispatches whatever is pending in ``context``."""
    context = context or GLib.MainContext.default()
    while context.iteration(False):
        pass


@pytest.fixture
def main_loop():
    """A GLib.MainLoop on the global default context that quits after at
    most 10 s, so that a lost callback fails instead of hanging."""
    loop = GLib.MainLoop()
    timed_out = []

    def on_timeout():
        timed_out.append(True)
        loop.quit()
        return GLib.SOURCE_REMOVE

    guard = GLib.timeout_add_seconds(10, on_timeout)
    yield loop
    if not timed_out:
        GLib.source_remove(guard)
    drain()
    assert not timed_out, 'the main loop timed out'


@pytest.fixture(autouse=True)
def build_tree_only():
    """Fails loudly if the tests picked up an installed ctok instead of the
    build tree's."""
    from gi.repository import Ctok

    typelib_path = os.environ.get('GI_TYPELIB_PATH', '')
    assert typelib_path, 'GI_TYPELIB_PATH is not set: run through meson test'
    assert hasattr(Ctok.TokenSource, '__enter__'), 'the overrides were not loaded'
    yield


# --- TAP output for meson (CTOK_PYTEST_TAP=1) ---
#
# So that `meson test` counts and names each case; pytest-tap is not in
# Debian 12. Pytest's own report is turned off, and failures' details go out
# as TAP comments.

if os.environ.get('CTOK_PYTEST_TAP') == '1':
    _tap = {'n': 0, 'failed': 0}

    def _tap_print(config, *lines):
        capture = config.pluginmanager.getplugin('capturemanager')
        with capture.global_and_fixture_disabled():
            for line in lines:
                print(line, flush=True)

    def _tap_result(config, ok, nodeid, directive='', details=''):
        _tap['n'] += 1
        _tap['failed'] += not ok
        _tap_print(config, '%s %d - %s%s' % ('ok' if ok else 'not ok', _tap['n'],
                                             nodeid, directive),
                   *('# ' + line for line in details.splitlines()))

    def pytest_collectreport(report):
        if report.failed:
            config = pytest_collectreport.config
            _tap_print(config, *('# ' + line for line in report.longreprtext.splitlines()))
            _tap_print(config, 'Bail out! cannot collect %s' % report.nodeid)

    @pytest.hookimpl(trylast=True)
    def pytest_configure(config):
        pytest_collectreport.config = config
        pytest_runtest_logreport.config = config
        reporter = config.pluginmanager.getplugin('terminalreporter')
        if reporter is not None:
            config.pluginmanager.unregister(reporter)

    def pytest_runtest_logreport(report):
        config = pytest_runtest_logreport.config
        name = report.nodeid.split('::', 1)[-1]
        if hasattr(report, 'wasxfail'):
            # xfail: an expected failure (not ok # TODO), or an unexpected
            # pass (ok # TODO).
            if report.when == 'call' or report.skipped:
                _tap_result(config, not report.skipped, name, ' # TODO ' + report.wasxfail)
        elif report.skipped:
            _tap_result(config, True, name, ' # SKIP ' + str(report.longrepr[-1]))
        elif report.failed:
            _tap_result(config, False, name if report.when == 'call'
                        else '%s (%s)' % (name, report.when), '', report.longreprtext)
        elif report.when == 'call':
            _tap_result(config, True, name)

    def pytest_sessionfinish(session):
        _tap_print(session.config, '1..%d' % _tap['n'])
