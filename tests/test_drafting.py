"""Composed replies: the options a model chooses from, and the email made of its choice."""

from __future__ import annotations

import json

import pytest

from steward import drafting
from steward.drafting import NEXT_STEPS, OPENINGS, PiecesError, Sentence, candidates, compose

PASSAGE = """# Shipping and delivery

## Late or missing parcels
A parcel is late when tracking shows no movement for 5 business days. For a late
parcel, apologise, share the tracking link, and open a carrier investigation.
- Say "sorry" first, then help the customer.\\
Ok.
"""


def test_candidates_are_whole_sentences_without_markup_best_passage_first() -> None:
    found = candidates([PASSAGE, "<p>Express delivery arrives in 1 to 2 business days.</p>"])
    assert found == [
        Sentence(1, "A parcel is late when tracking shows no movement for 5 business days."),
        Sentence(
            1,
            "For a late parcel, apologise, share the tracking link, and open a carrier "
            "investigation.",
        ),
        # quotes and backslashes would break the grammar's literals; a list marker goes
        Sentence(1, "Say 'sorry' first, then help the customer."),
        Sentence(2, "Express delivery arrives in 1 to 2 business days."),
    ]


def test_candidates_skip_repeats_and_overlong_sentences_and_stop_at_the_limit() -> None:
    long = "word " * 60 + "end."
    text = " ".join(f"Sentence number {n} is long enough to offer." for n in range(20))
    assert candidates([long]) == []
    assert candidates([text, text], limit=3) == [
        Sentence(1, f"Sentence number {n} is long enough to offer.") for n in range(3)
    ]
    assert len(candidates([text])) == drafting.MAX_CANDIDATES


def test_the_schema_offers_exactly_the_options() -> None:
    choices = [Sentence(1, "Express delivery arrives in 1 to 2 business days.")]
    schema = drafting.schema(choices)
    assert schema["required"] == ["opening", "answer", "next_step"]
    assert schema["properties"]["answer"]["enum"] == [choices[0].text]
    assert schema["properties"]["opening"]["enum"] == list(OPENINGS)
    # ungrounded: nothing to answer with, so no answer to choose
    assert drafting.schema([])["required"] == ["opening", "next_step"]


def test_a_composed_reply_cites_the_sentence_it_uses() -> None:
    choices = [Sentence(1, "First sentence of the handbook."), Sentence(3, "A third one!")]
    answer = json.dumps(
        {"opening": OPENINGS[1], "answer": "A third one!", "next_step": NEXT_STEPS[0]}
    )
    assert compose("Dana", answer, choices) == (
        f"Dear Dana,\n\n{OPENINGS[1]}\n\nA third one [3]!\n\n{NEXT_STEPS[0]}\n\n"
        "Best regards,\nThe Support Team"
    )
    ungrounded = json.dumps({"opening": OPENINGS[0], "next_step": NEXT_STEPS[2]})
    assert compose("Priya", ungrounded, []) == (
        f"Dear Priya,\n\n{OPENINGS[0]}\n\n{NEXT_STEPS[2]}\n\nBest regards,\nThe Support Team"
    )


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ("Dear Dana, we will refund you.", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"opening": "Hi!", "answer": "x", "next_step": NEXT_STEPS[0]}), "opening"),
        (json.dumps({"opening": OPENINGS[0], "answer": "x", "next_step": "Refund."}), "next_step"),
        (
            json.dumps(
                {"opening": OPENINGS[0], "answer": "We refund.", "next_step": NEXT_STEPS[0]}
            ),
            "not one of the handbook sentences offered",
        ),
        (json.dumps({"opening": OPENINGS[0], "next_step": NEXT_STEPS[0]}), "answer None"),
    ],
)
def test_pieces_outside_the_options_are_refused(answer: str, problem: str) -> None:
    with pytest.raises(PiecesError, match=problem):
        compose("Dana", answer, [Sentence(1, "The handbook's only sentence here.")])


def test_the_classifier_is_told_what_every_category_and_urgency_means() -> None:
    from workflows.support import CATEGORIES, CLASSIFY_INSTRUCTIONS, URGENCIES

    for value in (*CATEGORIES, *URGENCIES):
        assert f"\n- {value}: " in CLASSIFY_INSTRUCTIONS
