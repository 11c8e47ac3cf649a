import os
from typing import Iterator

import pytest

from tests import drivers


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        help="Rewrite fixtures/*/*.expected.py and *.report.txt from what the codemods produce now.",
    )


@pytest.fixture(autouse=True)
def _own_result_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test converts with a result cache of its own (``migrator.cache``), never the user's
    ``~/.cache/migrate``: a test that patches a codemod must not be answered from another's entry."""
    monkeypatch.setenv("MIGRATE_CACHE_DIR", str(tmp_path_factory.mktemp("migrate-cache")))


@pytest.fixture(scope="session")
def warm_driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[drivers.Drivers]:
    """What starts this test process's ``migrator.runtime`` runs (``tests/drivers.py``): one warm
    interpreter for the end-to-end drivers, ``migrate validate`` against the session's cluster and
    the runtime tests' runs alike, and the home they share."""
    started = drivers.CURRENT = drivers.start(tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("warm-driver"))
    yield started
    drivers.CURRENT = None
    started.close()


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # In CI a skipped end-to-end test is a failure: CI installs the whole runtime stack, so a
    # skip there means something is missing. Only tests that need a GPU may skip.
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        config.stash[_STRICT] = True
    _order(items)


def _order(items: list[pytest.Item]) -> None:
    """The end-to-end tests first (``pytest_xdist_make_scheduler`` hands tests out in this order),
    and first among them one that starts a cluster of its own (the longest runs): it keeps a worker
    busy while another starts the session's cluster, which every other one waits for. One, not all
    of them: with three Ray clusters starting at once on 2 cores the session's missed Ray's 30 s
    deadline for its raylet (``LocalCluster.OVERLOADED``)."""
    e2e, rest = [], []
    for item in items:
        (e2e if item.get_closest_marker("e2e") is not None else rest).append(item)
    own = next((item for item in e2e if "ray_cluster" not in getattr(item, "fixturenames", ())), None)
    if own is not None:
        e2e.remove(own)
        e2e.insert(0, own)
    items[:] = e2e + rest


_STRICT = pytest.StashKey[bool]()


def pytest_collection_finish(session: pytest.Session) -> None:
    """The collector settings a converting ``migrate`` process uses (``migrator.parallel``), in
    each test process once everything is imported: the unit tests are conversions by the thousand."""
    from migrator import parallel

    parallel._collect_less()


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
    """Under ``pytest -n auto`` (the README's test command) tests go out one at a time, in
    collection order: the end-to-end Ray runs (put first, ``_order``) start at once on
    every worker, against the run's one shared cluster (``tests/e2e/conftest.py``), and the quick
    unit tests fill the end, so no worker idles while another finishes a long module. pytest-xdist's
    own ``--dist load`` sends the first quarter of the tests to one worker in a block, which puts
    every Ray run on the same one. One converted run keeps about 1.3 of 2 cores busy (the rest is
    waiting on processes and polls), so a second worker's run or unit tests fill what is left.
    """
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class OneAtATime(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return nodeid

    return OneAtATime(config, log)
