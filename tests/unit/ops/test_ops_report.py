"""`fivecogs report` against a stand-in management service: tables, raw JSON, the operator token it sends, and the
exit code when it is down or refuses the token."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from fivecogs_ops.cli import app
from fivecogs_ops.report import report_table
from tests.support import free_port, operator_token

ROW: dict[str, Any] = {
    "province": "Nakhon Si Thammarat",
    "region": "south",
    "enterprises": 3,
    "active_enterprises": 2,
    "revenue_thb": "1250.50",
    "cost_thb": "1300.00",
    "margin_thb": "-49.50",
    "members_income_thb": "0.00",
    "community_fund_thb": "0.00",
    "reinvest_thb": "0.00",
    "local_value_thb": "1100.50",
    "target_poor_households_reached": 9,
    "notices": 4,
}
TOTALS = {"enterprises": 3, "revenue_thb": "1250.50", "margin_thb": "-49.50", "notices": 4}
PROVINCES = {"rows": [ROW], "totals": TOTALS}
# Fixed when the stand-in starts, as a service reads FIVECOGS_OPERATOR_TOKENS once.
ACCEPTED = f"Bearer {operator_token()}"
REGIONS = {"rows": [{key: value for key, value in ROW.items() if key != "province"}], "totals": TOTALS}


class _Management(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.headers.get("Authorization") != ACCEPTED:
            self._answer(401, {"error": "invalid bearer token"})
            return
        body = {"/v1/report/provinces": PROVINCES, "/v1/report/regions": REGIONS}.get(self.path)
        self._answer(200 if body else 404, body or {})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(body).encode())

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def management() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Management)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_json_is_the_raw_report(management: str) -> None:
    result = CliRunner().invoke(app, ["report", "--management-url", management, "--by", "province", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == PROVINCES


def test_both_views_by_default(management: str) -> None:
    result = CliRunner().invoke(app, ["report", "--management-url", management, "--json"])
    assert json.loads(result.stdout) == {"provinces": PROVINCES, "regions": REGIONS}


def test_tables_show_money_with_separators_and_a_totals_row(management: str) -> None:
    result = CliRunner().invoke(
        app, ["report", "--management-url", management, "--by", "region"], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    assert "1,250.50" in result.stdout
    assert "-49.50" in result.stdout
    assert "total" in result.stdout
    assert "south" in result.stdout


def test_money_is_right_aligned() -> None:
    console = Console(width=250, record=True)
    console.print(report_table(PROVINCES, "province"))
    lines = console.export_text().splitlines()
    revenue = next(line for line in lines if "Nakhon Si Thammarat" in line)
    header = next(line for line in lines if "revenue ฿" in line)
    # The amount ends where its column heading ends.
    assert revenue.index("1,250.50") + len("1,250.50") == header.index("revenue ฿") + len("revenue ฿")


def test_an_unreachable_service_exits_2_naming_the_address_tried() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["report", "--management-url", url])
    assert result.exit_code == 2
    assert f"cannot reach management: tried {url} (option): connection refused" in result.output


def test_a_refused_token_exits_2_and_says_so_without_printing_it(management: str) -> None:
    other = "another-operator-token-0002"
    result = CliRunner().invoke(
        app, ["report", "--management-url", management], env={"FIVECOGS_OPERATOR_TOKENS": other}
    )
    assert result.exit_code == 2
    assert "401 (invalid bearer token)" in result.output
    assert "FIVECOGS_OPERATOR_TOKENS" in result.output
    assert other not in result.output


def test_a_malformed_token_variable_is_refused_before_any_request(management: str) -> None:
    args = ["report", "--management-url", management]
    result = CliRunner().invoke(app, args, env={"FIVECOGS_OPERATOR_TOKENS": "short"})
    assert result.exit_code == 1
    assert "shorter than 16 characters" in result.output
    assert "short" not in result.output.replace("shorter", "")


def test_an_unknown_view_is_a_usage_error(management: str) -> None:
    result = CliRunner().invoke(app, ["report", "--management-url", management, "--by", "district"])
    assert result.exit_code == 2


def test_simulate_refuses_fewer_than_three_enterprises() -> None:
    result = CliRunner().invoke(app, ["simulate", "--enterprises", "2"])
    assert result.exit_code == 2


def test_simulate_exits_2_when_kafka_cannot_be_reached(monkeypatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "admin")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "nobody-listens")
    result = CliRunner().invoke(app, ["simulate", "--timeout", "5"])
    assert result.exit_code == 2, result.output


def test_a_narrow_terminal_gets_the_report_in_parts_that_fit() -> None:
    from fivecogs_ops.report import COLUMNS, report_tables

    parts = report_tables(PROVINCES, "province", "report", width=80)
    assert [len(t.columns) - 1 for t in parts] == [4, 3, 4]
    assert sum(len(t.columns) - 1 for t in parts) == len(COLUMNS)  # nothing left out
    for table in parts:
        console = Console(width=80, record=True)
        console.print(table)
        assert "…" not in console.export_text()  # no column cut short
    assert len(report_tables(PROVINCES, "province", "report", width=200)) == 1
