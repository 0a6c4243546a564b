"""The terminal tables: never wider than the terminal, the id always whole, what is left out chosen by rank."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len

from batchgate.cli_table import Column, fit
from batchgate.logs import redact_url

COLUMNS = [Column("id"), Column("status", rank=1), Column("model", rank=3, cut=True), Column("counts", rank=2)]
ID = "batch_" + "0" * 32


def test_columns_leave_in_rank_order_and_free_text_is_cut() -> None:
    rows = [[ID, "in_progress", "meta-llama/Llama-3.1-70B-Instruct", "2999/1/3000"]]
    assert fit(COLUMNS, rows, None)[1].split() == rows[0]
    assert fit(COLUMNS, rows, 80)[1].split() == [ID, "in_progress", "meta-llama/Ll…", "2999/1/3000"]
    assert fit(COLUMNS, rows, 70)[0].split() == ["ID", "STATUS", "COUNTS"]  # under 8 cells left: no model
    assert fit(COLUMNS, rows, 51)[1].split() == [ID, "in_progress"]
    assert fit(COLUMNS, rows, 50)[1] == ID  # strictly by rank: no model while the status is left out
    assert fit(COLUMNS, rows, 20)[1] == ID  # the id stays whole even when it alone is too wide


@given(st.integers(40, 200), st.lists(st.tuples(st.text(max_size=60), st.text(max_size=12)), max_size=5))
def test_no_line_is_wider_than_the_terminal(width: int, cells: list[tuple[str, str]]) -> None:
    cells = [(m.replace("\n", " ").replace("\r", " "), c.replace("\n", " ").replace("\r", " ")) for m, c in cells]
    rows = [[ID, "completed", model, counts] for model, counts in cells]
    lines = fit(COLUMNS, rows, width)
    assert all(cell_len(line) <= width for line in lines)
    assert all(line.startswith(ID) for line in lines[1:])


def test_urls_are_shown_without_their_passwords() -> None:
    assert redact_url("postgresql://bg:s3cret@db:5432/bg") == "postgresql://bg:***@db:5432/bg"
    assert redact_url("postgresql://bg@db/bg?sslmode=require&password=s3cret") == (
        "postgresql://bg@db/bg?sslmode=require&password=***")
    assert redact_url("http://10.0.0.5:8000/v1?api_key=sk-1") == "http://10.0.0.5:8000/v1?api_key=***"
    assert redact_url("s3://bucket/prefix") == "s3://bucket/prefix"
