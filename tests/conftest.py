import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        help="Rewrite fixtures/*/*.expected.py and *.report.txt from what the codemods produce now.",
    )


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # In CI a skipped end-to-end test is a failure: CI installs the whole runtime stack, so a
    # skip there means something is missing. Only tests that need a GPU may skip.
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        config.stash[_STRICT] = True


_STRICT = pytest.StashKey[bool]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if not item.config.stash.get(_STRICT, False) or not report.skipped:
        return
    if item.get_closest_marker("gpu") is not None:
        return
    report.outcome = "failed"
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.longrepr = f"skipped under CI=true, which counts as a failure: {reason}"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Under ``pytest -n auto`` (the README's test command) each end-to-end module (``tests/e2e/*.py``)
    is one unit of work, run on one worker against that worker's Ray cluster; the other tests are
    shared out one by one. Two Ray runs at once do not crowd a 2-core machine: one converted run
    keeps about 1.3 cores busy (the rest is waiting on processes and polls), so a second module's
    runs, or the unit tests, fill what is left. xdist sends the largest units first, so the Ray
    modules start at once and the quick tests fill the end. (pytest-xdist's own ``--dist
    loadgroup`` cannot group like this on pytest 9: it renames ``item._nodeid``, which pytest 9 no
    longer reads.)
    """
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class EndToEndByModule(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return nodeid.split("::", 1)[0] if nodeid.startswith("tests/e2e/") else nodeid

    return EndToEndByModule(config, log)
