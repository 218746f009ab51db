"""Deterministic synthetic SQuAD-format data: the embedded default dataset.

Each context is a short "article" of facts about invented people, places and organisations.
Facts of the same relation appear several times per context with different subjects, so a
question can only be answered by matching its subject (distractor entities of the same type).
Some contexts carry many facts so that they overflow into two or more features at
max_length 384 / stride 128. With ``unanswerable_fraction`` > 0, some questions ask about a
subject that is absent from the context (SQuAD v2 style, no answer).

The generator writes the official SQuAD JSON layout, so the file loader is exercised too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

# Bump whenever the generated data changes, so cached files from older versions are not reused.
GENERATOR_VERSION = 5

_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr",
           "gr", "kl", "st", "tr", "sh", "th", "ch", "pl"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "io"]
_CODAS = ["", "", "n", "r", "s", "l", "m", "th", "x", "nd"]

_OCCUPATIONS = ["baker", "pilot", "surgeon", "teacher", "carpenter", "chemist", "sailor",
                "painter", "architect", "farmer", "lawyer", "poet", "engineer", "librarian",
                "astronomer", "jeweller", "potter", "composer", "tailor", "geologist"]
_COLOURS = ["red", "blue", "green", "yellow", "purple", "orange", "silver", "golden", "white",
            "black", "crimson", "turquoise", "violet", "amber", "grey", "scarlet"]
_ORG_KINDS = ["Institute", "Company", "Society", "Academy", "Guild", "Foundation", "Museum",
              "Observatory", "Library", "Orchestra"]
_INSTRUMENTS = ["violin", "piano", "flute", "cello", "harp", "trumpet", "drums", "guitar",
                "oboe", "clarinet"]


@dataclass(frozen=True)
class Relation:
    """One kind of fact: how it is stated and how it is asked."""

    name: str
    subject: str  # entity type of the subject
    answer: str  # entity type of the answer
    statements: tuple[str, ...]  # templates with {s} and {a}
    questions: tuple[str, ...]  # templates with {s}


RELATIONS: tuple[Relation, ...] = (
    Relation("birthplace", "person", "city",
             ("{s} was born in the town of {a}.",),
             ("In which town was {s} born?", "Where was {s} born?")),
    Relation("birth_year", "person", "year",
             ("{s} was born in the year {a}.",),
             ("In which year was {s} born?", "When was {s} born?")),
    Relation("occupation", "person", "occupation",
             ("{s} works as a {a}.",),
             ("What does {s} work as?", "What is the job of {s}?")),
    Relation("colour", "person", "colour",
             ("The favourite colour of {s} is {a}.",),
             ("What is the favourite colour of {s}?", "Which colour does {s} like best?")),
    Relation("instrument", "person", "instrument",
             ("{s} plays the {a}.",),
             ("Which instrument does {s} play?", "What does {s} play?")),
    Relation("capital", "country", "city",
             ("The capital of {s} is {a}.",),
             ("What is the capital of {s}?", "Which city is the capital of {s}?")),
    Relation("population", "city", "number",
             ("{s} has a population of {a} people.",),
             ("How many people live in {s}?", "What is the population of {s}?")),
    Relation("founder", "org", "person",
             ("The {s} was founded by {a}.",),
             ("Who founded the {s}?", "By whom was the {s} founded?")),
    Relation("founded_year", "org", "year",
             ("The {s} was established in {a}.",),
             ("When was the {s} established?", "In which year was the {s} established?")),
    Relation("headquarters", "org", "city",
             ("The {s} has its headquarters in {a}.",),
             ("Where is the {s} based?", "Where are the headquarters of the {s}?")),
)


class _Names:
    """Invented, pronounceable entity names drawn from fixed pools.

    Pools (rather than a fresh word per entity) make each name a recurring word, as real names
    are; the task is then to match the question's subject among several of the same type, not
    to spell out never-seen strings. Named entities are unique within one context, so no
    question is ambiguous.
    """

    NAMED = ("person", "city", "country", "org")

    def __init__(self, rng: random.Random, vocabulary_seed: int) -> None:
        self.rng = rng
        self.used: set[str] = set()
        # The pools come from the seed alone, not the split: train and validation share the
        # names (as a language shares its words) and differ in the facts stated about them.
        pool = self._pool(random.Random(f"names-{vocabulary_seed}"), 550)
        self.first, self.last = pool[:100], pool[100:200]
        self.cities, self.countries, self.orgs = pool[200:350], pool[350:450], pool[450:550]

    @staticmethod
    def _pool(rng: random.Random, n: int) -> list[str]:
        words: dict[str, None] = {}
        while len(words) < n:
            syllables = rng.randint(2, 3)
            word = "".join(
                rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
                for _ in range(syllables)
            ).capitalize()
            words[word] = None
        return list(words)

    def new_context(self) -> None:
        """Forget the names used so far: uniqueness is needed within a context only."""
        self.used.clear()

    def entity(self, kind: str) -> str:
        if kind not in self.NAMED:
            return self._value(kind)
        while True:
            name = self._name(kind)
            if name not in self.used:
                self.used.add(name)
                return name

    def _name(self, kind: str) -> str:
        rng = self.rng
        if kind == "person":
            return f"{rng.choice(self.first)} {rng.choice(self.last)}"
        if kind == "city":
            return rng.choice(self.cities)
        if kind == "country":
            return rng.choice(self.countries) + rng.choice(["ia", "land"])
        return f"{rng.choice(self.orgs)} {rng.choice(_ORG_KINDS)}"

    def _value(self, kind: str) -> str:
        rng = self.rng
        if kind == "year":
            return str(rng.randint(1200, 2020))
        if kind == "number":
            return f"{rng.randint(2, 990)},{rng.randint(0, 999):03d}"
        if kind == "occupation":
            return rng.choice(_OCCUPATIONS)
        if kind == "colour":
            return rng.choice(_COLOURS)
        if kind == "instrument":
            return rng.choice(_INSTRUMENTS)
        raise ValueError(f"unknown entity kind {kind}")


def _fact(
    rng: random.Random, names: _Names, relation: Relation, subject: str
) -> tuple[str, str, int]:
    """A statement of ``relation`` about ``subject``: (sentence, answer, answer offset)."""
    answer = names.entity(relation.answer)
    before, after = rng.choice(relation.statements).split("{a}")
    # The offset comes from the template, not from searching the sentence: the answer text may
    # also occur inside the subject's name ("red" in "Fred").
    prefix = before.format(s=subject)
    return prefix + answer + after.format(s=subject), answer, len(prefix)


def generate_context(
    rng: random.Random, names: _Names, n_facts: int, n_questions: int,
    unanswerable_fraction: float, id_prefix: str,
) -> dict[str, Any]:
    """One paragraph (official layout) with its questions.

    Questions are asked about 2-3 "asked" relations, each stated for 2-3 subjects (same-type
    distractors); the remaining facts use other relations and make the context long.
    """
    names.new_context()
    shuffled = rng.sample(RELATIONS, k=len(RELATIONS))
    asked_relations, background = shuffled[: rng.randint(2, 3)], shuffled[3:]
    facts: list[tuple[Relation, str, str, str, int]] = []  # relation, subject, sentence, answer, at
    for relation in asked_relations:
        for _ in range(rng.randint(2, 3)):
            subject = names.entity(relation.subject)
            facts.append((relation, subject, *_fact(rng, names, relation, subject)))
    askable = len(facts)
    while len(facts) < n_facts:
        relation = rng.choice(background)
        subject = names.entity(relation.subject)
        facts.append((relation, subject, *_fact(rng, names, relation, subject)))
    order = rng.sample(range(len(facts)), k=len(facts))
    facts = [facts[i] for i in order]
    asked_positions = [order.index(i) for i in range(askable)]

    # Build the context and remember where each answer starts (character offsets).
    context_parts: list[str] = []
    answer_starts: list[int] = []
    offset = 0
    for _, _, sentence, _, at in facts:
        if context_parts:
            offset += 1  # the joining space
        answer_starts.append(offset + at)
        context_parts.append(sentence)
        offset += len(sentence)
    context = " ".join(context_parts)

    qas = []
    asked = rng.sample(asked_positions, k=min(n_questions, len(asked_positions)))
    for number, index in enumerate(asked):
        relation, subject, _, answer, _ = facts[index]
        qid = f"{id_prefix}-q{number}"
        if rng.random() < unanswerable_fraction:
            absent = names.entity(relation.subject)  # same relation, subject not in the context
            question = rng.choice(relation.questions).format(s=absent)
            qas.append({"id": qid, "question": question, "answers": [], "is_impossible": True})
            continue
        question = rng.choice(relation.questions).format(s=subject)
        qa = {"id": qid, "question": question,
              "answers": [{"text": answer, "answer_start": answer_starts[index]}]}
        if unanswerable_fraction > 0:
            qa["is_impossible"] = False
        qas.append(qa)
    return {"context": context, "qas": qas}


def generate_squad(
    n_contexts: int,
    seed: int,
    unanswerable_fraction: float = 0.0,
    long_fraction: float = 0.25,
    questions_per_context: int = 4,
    split: str = "train",
) -> dict[str, Any]:
    """A synthetic dataset in the official SQuAD JSON layout.

    Args:
        n_contexts: paragraphs to generate (one article per 10 paragraphs).
        seed: generator seed; the same arguments always give the same data.
        unanswerable_fraction: share of questions about an absent subject (v2 style).
        long_fraction: share of contexts with enough facts to overflow 384 tokens.
        questions_per_context: questions asked per paragraph.
        split: used in ids and titles.
    """
    rng = random.Random(f"{seed}-{split}")
    names = _Names(rng, seed)
    articles: list[dict[str, Any]] = []
    for index in range(n_contexts):
        if index % 10 == 0:
            articles.append({"title": f"Synthetic {split} {index // 10}", "paragraphs": []})
        long = rng.random() < long_fraction
        n_facts = rng.randint(34, 48) if long else rng.randint(6, 12)
        paragraph = generate_context(rng, names, n_facts, questions_per_context,
                                     unanswerable_fraction, f"{split}-{seed}-c{index}")
        articles[-1]["paragraphs"].append(paragraph)
    version = "synthetic-v2.0" if unanswerable_fraction > 0 else "synthetic-v1.1"
    return {"version": version, "data": articles}
