"""Deterministic synthetic SQuAD-format data: the embedded default dataset.

Each context is a short "article" of facts about invented people, places and organisations,
each stated with one template; questions ask for one fact with a template that shares a key
word with its statement only. Template sets (``TEMPLATES``) range from easy to hard:

- ``forms`` (the default): five relations whose answers have five different forms (city,
  year, person, number, colour). Persons and cities also occur as subjects of other facts, so
  for them the answer's slot matters; the other forms occur once. Learnt early and to EM ≈ 99
  by a tiny model in every run measured (seeds, thread counts, torch builds).
- ``core``: eight relations, two per answer form, so every answer has a same-form distractor
  that only the question's key word rules out; ``distinct``: all seventeen relations;
  ``overlapping``: generator v7's seventeen, whose words overlap across relations. Where two
  relations share an answer form, a tiny model learns to tell them apart one pair at a time,
  at a moment that depends on the seed and on float rounding (docs/accuracy.md): headroom for
  larger models, not a portable gate for the tiny one.

In every set each asked relation is stated once per context. ``distractor_subjects`` > 0 also
states it for other subjects, so the subject must be matched too (harder still). Some contexts
carry many facts so that they overflow into two or more features at max_length 384 / stride
128. With ``unanswerable_fraction`` > 0, some questions ask for a relation the context never
states (SQuAD v2 style, no answer).

The generator writes the official SQuAD JSON layout, so the file loader is exercised too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

# Bump whenever the generated data changes, so cached files from older versions are not reused.
GENERATOR_VERSION = 9

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


DISTINCT_RELATIONS: tuple[Relation, ...] = (
    # Generator v8 (the default): every relation has a key word that its statement and its
    # questions share and that no other relation's statement or question contains (tested), so
    # a question is answered by finding the one sentence with its key word among same-type
    # distractors — lexical matching, as most SQuAD questions are. The other question words
    # (what, which, year, city, ...) never occur in a statement.
    Relation("birthplace", "person", "city",
             ("{s} was born in {a}.",),
             ("Where was {s} born?", "In what place was {s} born?")),
    Relation("graduation", "person", "year",
             ("The graduation of {s} was in {a}.",),
             ("When was the graduation of {s}?", "In what year was the graduation of {s}?")),
    Relation("wedding", "person", "year",
             ("The wedding of {s} was held in {a}.",),
             ("When was the wedding of {s}?", "In what year was the wedding of {s}?")),
    Relation("profession", "person", "occupation",
             ("The profession of {s} is {a}.",),
             ("What is the profession of {s}?", "Which profession does {s} practise?")),
    Relation("father", "person", "occupation",
             ("The father of {s} was a {a}.",),
             ("What was the father of {s}?", "What job did the father of {s} do?")),
    Relation("favourite", "person", "colour",
             ("The favourite colour of {s} is {a}.",),
             ("What is the favourite colour of {s}?", "Which colour is the favourite of {s}?")),
    Relation("flag", "country", "colour",
             ("The flag of {s} is {a}.",),
             ("What is the flag of {s}?", "How does the flag of {s} look?")),
    Relation("instrument", "person", "instrument",
             ("The instrument of {s} is the {a}.",),
             ("What is the instrument of {s}?", "Which instrument does {s} play?")),
    Relation("lessons", "person", "instrument",
             ("{s} gives lessons on the {a}.",),
             ("What does {s} give lessons on?", "On what are the lessons of {s}?")),
    Relation("home", "person", "city",
             ("{s} has a home in {a}.",),
             ("Where is the home of {s}?", "In what city is the home of {s}?")),
    Relation("capital", "country", "city",
             ("The capital of {s} is {a}.",),
             ("What is the capital of {s}?", "Which city is the capital of {s}?")),
    Relation("area", "country", "number",
             ("{s} covers an area of {a} square kilometres.",),
             ("What is the area of {s}?", "How large is the area of {s}?")),
    Relation("population", "city", "number",
             ("{s} has a population of {a} people.",),
             ("What is the population of {s}?", "How many people live in {s}?")),
    Relation("mayor", "city", "person",
             ("The mayor of {s} is {a}.",),
             ("Who is the mayor of {s}?", "Who is mayor of {s}?")),
    Relation("founder", "org", "person",
             ("The {s} was founded by {a}.",),
             ("Who founded the {s}?", "By whom was the {s} founded?")),
    Relation("established", "org", "year",
             ("The {s} was established in {a}.",),
             ("When was the {s} established?", "In what year was the {s} established?")),
    Relation("headquarters", "org", "city",
             ("The {s} has its headquarters in {a}.",),
             ("Where are the headquarters of the {s}?",
              "In what city are the headquarters of the {s}?")),
)

OVERLAPPING_RELATIONS: tuple[Relation, ...] = (
    # Generator v7's templates, kept as the harder option: each relation's questions share a
    # key word with its statement, but words also overlap across relations ("born" in the
    # birthplace and birth-year statements, "city" in the home statement and in capital and
    # headquarters questions, "colour" in the flag question), so several relations are told
    # apart only by a conjunction of words. Measured: a tiny 2-layer model learns these late,
    # at a point that depends on the seed and on float rounding.
    Relation("birthplace", "person", "city",
             ("{s} was born in the town of {a}.",),
             ("In which town was {s} born?", "Which town was {s} born in?")),
    Relation("birth_year", "person", "year",
             ("{s} was born in the year {a}.",),
             ("In which year was {s} born?", "What year was {s} born in?")),
    Relation("occupation", "person", "occupation",
             ("{s} works as a {a}.",),
             ("What does {s} work as?", "As what does {s} work?")),
    Relation("parent_occupation", "person", "occupation",
             ("The father of {s} was a {a}.",),
             ("What was the father of {s}?", "What job did the father of {s} have?")),
    Relation("colour", "person", "colour",
             ("The favourite colour of {s} is {a}.",),
             ("What is the favourite colour of {s}?", "Which favourite colour does {s} have?")),
    Relation("flag", "country", "colour",
             ("The flag of {s} is {a}.",),
             ("What colour is the flag of {s}?", "Which colour is the flag of {s}?")),
    Relation("instrument", "person", "instrument",
             ("{s} plays the {a}.",),
             ("Which instrument does {s} play?", "What does {s} play?")),
    Relation("lessons", "person", "instrument",
             ("{s} gives lessons on the {a}.",),
             ("On which instrument does {s} give lessons?", "What does {s} give lessons on?")),
    Relation("home", "person", "city",
             ("{s} has a home in the city of {a}.",),
             ("In which city does {s} have a home?", "Where is the home of {s}?")),
    Relation("wedding_year", "person", "year",
             ("The wedding of {s} took place in {a}.",),
             ("In which year was the wedding of {s}?", "When was the wedding of {s}?")),
    Relation("capital", "country", "city",
             ("The capital of {s} is {a}.",),
             ("What is the capital of {s}?", "Which city is the capital of {s}?")),
    Relation("area", "country", "number",
             ("{s} covers an area of {a} square kilometres.",),
             ("What is the area of {s}?", "How large is the area of {s}?")),
    Relation("population", "city", "number",
             ("{s} has a population of {a} people.",),
             ("What is the population of {s}?", "How many people live in {s}?")),
    Relation("mayor", "city", "person",
             ("The mayor of {s} is {a}.",),
             ("Who is the mayor of {s}?", "Who is mayor of {s}?")),
    Relation("founder", "org", "person",
             ("The {s} was founded by {a}.",),
             ("Who founded the {s}?", "By whom was the {s} founded?")),
    Relation("founded_year", "org", "year",
             ("The {s} was established in {a}.",),
             ("When was the {s} established?", "In which year was the {s} established?")),
    Relation("headquarters", "org", "city",
             ("The {s} has its headquarters in {a}.",),
             ("Where are the headquarters of the {s}?",
              "In which city are the headquarters of the {s}?")),
)


#: Values are whole words of a 4,000-word WordPiece: years from one century, numbers as
#: "N thousand". Measured with 4-digit years from 1200-2020 and 6-digit numbers, most remaining
#: errors of a trained model were span boundaries inside their word pieces ("1460" -> "14").
YEARS = (1900, 1999)
NUMBERS = "thousands"

#: Facts per context: short contexts fit one 384-token window, long ones overflow into 2-3.
SHORT_FACTS = (6, 12)
LONG_FACTS = (34, 48)

#: The default template set: five relations whose answers have five different forms — a city
#: (one capitalised word), a year (19xx), a person (two capitalised words), a number ("N
#: thousand") and a colour — asked with their own wh-words. A question is answered by the form
#: its wh-word asks for and, for persons and cities, which also occur as the subjects of other
#: facts, by the answer's slot ("founded by _", "born in _"). Measured on 2 cores (tiny RoFormer,
#: see docs/accuracy.md): where two relations share an answer form (every set below), telling
#: them apart by the question's key word is learnt one pair at a time, each pair at a moment that
#: depends on the seed and on float rounding (thread count, CPU, torch build) — final EM from 49
#: to 100 for the same code. Forms are learnt early in every run.
FORMS = ("birthplace", "wedding", "founder", "population", "favourite")
FORMS_RELATIONS: tuple[Relation, ...] = tuple(r for r in DISTINCT_RELATIONS if r.name in FORMS)

#: Eight relations, four answer forms of two relations each (city: birthplace, capital; year:
#: wedding, established; person: mayor, founder; number: area, population): every answer has a
#: same-form distractor that only the question's key word rules out. Harder: for larger models.
CORE = ("birthplace", "capital", "wedding", "established", "mayor", "founder", "area",
        "population")
CORE_RELATIONS: tuple[Relation, ...] = tuple(r for r in DISTINCT_RELATIONS if r.name in CORE)

#: Template sets by name (``data.synthetic_templates``), easiest first.
TEMPLATES: dict[str, tuple[Relation, ...]] = {"forms": FORMS_RELATIONS,
                                              "core": CORE_RELATIONS,
                                              "distinct": DISTINCT_RELATIONS,
                                              "overlapping": OVERLAPPING_RELATIONS}
RELATIONS = FORMS_RELATIONS


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
            # Values (years, colours, ...) differ within a context too, so that a same-type
            # distractor is a different answer, unless the small pools run out.
            for _ in range(50):
                value = self._value(kind)
                if value not in self.used:
                    break
            self.used.add(value)
            return value
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
            return str(rng.randint(*YEARS))
        if kind == "number":
            if NUMBERS == "thousands":
                return f"{rng.randint(2, 99)} thousand"
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


def _entities_of(facts: list[tuple[Relation, str, str, str, int]], kind: str) -> int:
    """How many different entities of type ``kind`` the facts mention (as subject or answer)."""
    return len({e for r, s, _, a, _ in facts
                for e, k in ((s, r.subject), (a, r.answer)) if k == kind})


def generate_context(
    rng: random.Random, names: _Names, n_facts: int, n_questions: int,
    unanswerable_fraction: float, id_prefix: str, distractor_subjects: int = 0,
    relations: tuple[Relation, ...] = RELATIONS,
) -> dict[str, Any]:
    """One paragraph (official layout) with its questions.

    ``n_questions`` relations are asked; each is stated for its subject and for
    ``distractor_subjects`` other subjects of the same type, or, for an unanswerable question,
    not at all. The other facts use the remaining relations (which may repeat) and make the
    context long; no asked relation appears among them.
    """
    names.new_context()
    shuffled = rng.sample(relations, k=len(relations))
    asked_relations, background = shuffled[:n_questions], shuffled[n_questions:]
    facts: list[tuple[Relation, str, str, str, int]] = []  # relation, subject, sentence, answer, at
    questions: list[tuple[Relation, int | None]] = []  # asked relation, index of its fact

    def add(relation: Relation) -> None:
        subject = names.entity(relation.subject)
        facts.append((relation, subject, *_fact(rng, names, relation, subject)))

    for relation in asked_relations:
        if rng.random() < unanswerable_fraction:
            questions.append((relation, None))  # stated for no one in this context
            continue
        questions.append((relation, len(facts)))
        for _ in range(1 + distractor_subjects):
            add(relation)
    while len(facts) < n_facts:
        add(rng.choice(background))
    # Every answer gets at least one other entity of its type in the context (a distractor);
    # only impossible when the one other relation of that type is asked but left unstated.
    for relation, index in questions:
        same_type = [r for r in background if relation.answer in (r.answer, r.subject)]
        if index is not None and _entities_of(facts, relation.answer) < 2 and same_type:
            add(rng.choice(same_type))
    order = rng.sample(range(len(facts)), k=len(facts))
    position = {old: new for new, old in enumerate(order)}
    facts = [facts[i] for i in order]

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
    for number, (relation, index) in enumerate(questions):
        qid = f"{id_prefix}-q{number}"
        if index is None:
            # The relation is stated for no one here: ask it of a fresh subject.
            absent = names.entity(relation.subject)
            question = rng.choice(relation.questions).format(s=absent)
            qas.append({"id": qid, "question": question, "answers": [], "is_impossible": True})
            continue
        _, subject, _, answer, _ = facts[position[index]]
        question = rng.choice(relation.questions).format(s=subject)
        qa = {"id": qid, "question": question,
              "answers": [{"text": answer, "answer_start": answer_starts[position[index]]}]}
        if unanswerable_fraction > 0:
            qa["is_impossible"] = False
        qas.append(qa)
    return {"context": context, "qas": qas}


def generate_squad(
    n_contexts: int,
    seed: int,
    unanswerable_fraction: float = 0.0,
    long_fraction: float = 0.25,
    questions_per_context: int = 3,
    split: str = "train",
    distractor_subjects: int = 0,
    templates: str = "forms",
) -> dict[str, Any]:
    """A synthetic dataset in the official SQuAD JSON layout.

    Args:
        n_contexts: paragraphs to generate (one article per 10 paragraphs).
        seed: generator seed; the same arguments always give the same data.
        unanswerable_fraction: share of questions about an absent subject (v2 style).
        long_fraction: share of contexts with enough facts to overflow 384 tokens.
        questions_per_context: questions asked per paragraph.
        split: used in ids and titles.
        distractor_subjects: other subjects stated with each asked relation (0: the relation
            alone identifies the answer; > 0: the question's subject must be matched too).
        templates: ``"forms"`` (five relations, five answer forms), ``"core"`` (eight
            relations, two per answer form, told apart by distinct key words), ``"distinct"``
            (all seventeen relations, distinct key words) or ``"overlapping"`` (generator v7's
            seventeen, whose words overlap across relations: hardest).
    """
    if templates not in TEMPLATES:
        raise ValueError(f"templates must be one of {sorted(TEMPLATES)}, got {templates!r}")
    relations = TEMPLATES[templates]
    if not 1 <= questions_per_context < len(relations):
        raise ValueError(f"questions_per_context must be 1..{len(relations) - 1} "
                         f"(one relation per question, one left for background facts), "
                         f"got {questions_per_context}")
    if distractor_subjects < 0:
        raise ValueError(f"distractor_subjects must be >= 0, got {distractor_subjects}")
    rng = random.Random(f"{seed}-{split}")
    names = _Names(rng, seed)
    articles: list[dict[str, Any]] = []
    for index in range(n_contexts):
        if index % 10 == 0:
            articles.append({"title": f"Synthetic {split} {index // 10}", "paragraphs": []})
        long = rng.random() < long_fraction
        n_facts = rng.randint(*LONG_FACTS) if long else rng.randint(*SHORT_FACTS)
        paragraph = generate_context(rng, names, n_facts, questions_per_context,
                                     unanswerable_fraction, f"{split}-{seed}-c{index}",
                                     distractor_subjects, relations)
        articles[-1]["paragraphs"].append(paragraph)
    version = "synthetic-v2.0" if unanswerable_fraction > 0 else "synthetic-v1.1"
    return {"version": version, "data": articles}
