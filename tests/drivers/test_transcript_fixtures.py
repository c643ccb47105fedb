"""Every recorded session in tests/fixtures/transcripts/ that has a SESSION.expected.json
(made with `daq replay SESSION.jsonl --make-test DRIVER`) is replayed, strictly, to its driver:
the samples must be exactly the ones recorded."""

import json
import shlex
from pathlib import Path

import pytest

from daq.cli import main
from daq.errors import HallmarkError
from daq.transcripttest import TranscriptCase, replay_case, sidecar_path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts"
CASES = sorted(FIXTURES.glob("*.expected.json"))


def test_there_are_transcript_tests():
    assert len(CASES) >= 2


@pytest.mark.parametrize("sidecar", CASES, ids=lambda p: p.name.removesuffix(".expected.json"))
def test_a_recorded_session_replays_to_the_same_samples(sidecar):
    case = TranscriptCase.load(sidecar)
    rows = replay_case(case.transcript, case.driver, options=case.options, polls=case.polls,
                       address=case.address, timeout=case.timeout)  # fmt: skip
    assert json.loads(json.dumps(rows)) == case.samples


def test_make_test_writes_the_sidecar_and_a_wrong_driver_is_refused(tmp_path, capsys):
    session = tmp_path / "gauge.jsonl"
    session.write_bytes((FIXTURES / "mark10_gcl2_poll.jsonl").read_bytes())
    cmd = f'replay {session} --make-test mark10 --options \'{{"capacity": "500 N"}}\' --polls 6'
    assert main(shlex.split(cmd)) == 0
    made = TranscriptCase.load(sidecar_path(session))
    assert made.samples == TranscriptCase.load(FIXTURES / "mark10_gcl2_poll.expected.json").samples
    # The Imada driver asks 'D', which the Mark-10 session never heard: refused in words.
    assert main(shlex.split(f"replay {session} --make-test imada --polls 1")) == 1
    assert "imada did not replay gauge.jsonl" in capsys.readouterr().err
    with pytest.raises(HallmarkError, match="no driver called 'nope'"):
        replay_case(session, "nope", options={}, polls=1, address="{path}")
