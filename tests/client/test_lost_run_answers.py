"""Issue 30 item 6, for ``book``: a ``/run`` whose answer was lost (the job was queued, the
client never learned its id) is recorded, the piece is sent again (the book needs it), and the
summary says how many jobs may have run and been billed twice. The look-alike queues the job
and closes the connection without an answer."""

from __future__ import annotations

from higgs_tts import make_book

from tests.client.test_fanout import book, endpoint_for, options  # noqa: F401 - the book fixture


def test_a_lost_run_answer_is_counted_and_told(simulated, book, tmp_path):  # noqa: F811
    fake, _ = simulated
    fake.lose_run_answers(1)
    summary = make_book(book, tmp_path / "out", endpoint_for(fake), options())
    assert summary.answers_lost == 1
    assert fake.counts.runs == summary.pieces + 1  # the lost one ran too: it is not hidden
    assert any("1 /run answer(s) were lost" in line and "billed" in line for line in summary.lines())
    recorded = (tmp_path / "out" / "manifest.json").read_text() + (tmp_path / "out" / "manifest.journal").read_text()
    assert "POST /run got no usable answer" in recorded  # kept with the piece's errors
