import subprocess
import sys

import portl

EXPECTED = {
    "__version__", "load_job", "LoadedJob", "plan", "Plan", "run", "RunOptions", "RunReport", "Counts", "SkipRow",
    "WriteMode", "ConflictStrategy", "PortlError", "ConfigError", "ConnectorError", "TransientError",
    "TerminalError", "SourceError", "DataError", "ConflictError", "HookError", "ValidationFailed",
    "RejectLimitExceeded", "ResumeError", "Interrupted", "CallError", "OutboxError", "StepError",
    "load_flow", "LoadedFlow", "plan_flow", "FlowPlan", "run_flow", "FlowOptions", "FlowReport",
}


def test_the_public_names_are_exactly_the_documented_ones():
    assert set(portl.__all__) == EXPECTED


def test_every_public_name_resolves():
    for name in portl.__all__:
        assert getattr(portl, name) is not None, name


def test_errors_share_one_root():
    for name in portl.__all__:
        value = getattr(portl, name)
        if isinstance(value, type) and issubclass(value, Exception) and name != "SkipRow":
            assert issubclass(value, portl.PortlError), name


def test_importing_portl_loads_no_database_driver_nor_the_engine():
    code = "import sys, portl; print(sorted(m for m in sys.modules if m.split('.')[0] in {'psycopg','pymysql','boto3','pyarrow','httpx'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
