"""Synthetic SQuAD generator: determinism, official layout, answer offsets, distractors, v2."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest

from qa.task.synthetic import RELATIONS, TEMPLATES, generate_squad

N_CONTEXTS = 60


def _template_regex(template: str) -> re.Pattern[str]:
    """A template such as ``"{s} plays the {a}."`` as a full-match regex with named groups."""
    pattern = re.escape(template)
    for slot in ("s", "a"):
        pattern = pattern.replace(re.escape("{" + slot + "}"), f"(?P<{slot}>.+?)")
    return re.compile(pattern)


STATEMENTS = [(r.name, _template_regex(t)) for r in RELATIONS for t in r.statements]
QUESTIONS = [(r.name, _template_regex(t)) for r in RELATIONS for t in r.questions]
CORE_STATEMENTS = [(r.name, _template_regex(t)) for r in TEMPLATES["core"] for t in r.statements]


def parse_facts(context: str) -> list[tuple[str, str, str]]:
    """(relation, subject, answer) of every sentence; each sentence must be exactly one fact."""
    facts = []
    for sentence in re.split(r"(?<=\.) ", context):
        matches = {(name, m["s"], m["a"]) for name, rx in STATEMENTS
                   if (m := rx.fullmatch(sentence))}
        assert len(matches) == 1, f"sentence is not exactly one fact: {sentence!r} -> {matches}"
        facts.append(matches.pop())
    return facts


def parse_question(question: str) -> tuple[str, str]:
    """(relation, subject) asked by a question."""
    matches = {(name, m["s"]) for name, rx in QUESTIONS if (m := rx.fullmatch(question))}
    assert len(matches) == 1, f"question matches {len(matches)} templates: {question!r}"
    return matches.pop()


def paragraphs(dataset: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for article in dataset["data"] for p in article["paragraphs"]]


@pytest.fixture(scope="module")
def v1() -> dict[str, Any]:
    return generate_squad(N_CONTEXTS, seed=7)


@pytest.fixture(scope="module")
def v2() -> dict[str, Any]:
    return generate_squad(N_CONTEXTS, seed=7, unanswerable_fraction=0.4)


def test_same_seed_gives_identical_json() -> None:
    first = json.dumps(generate_squad(20, seed=3, unanswerable_fraction=0.3), sort_keys=True)
    second = json.dumps(generate_squad(20, seed=3, unanswerable_fraction=0.3), sort_keys=True)
    assert first == second


def test_different_seed_or_split_gives_different_data() -> None:
    base = generate_squad(20, seed=3)
    assert paragraphs(generate_squad(20, seed=4))[0]["context"] != paragraphs(base)[0]["context"]
    validation = generate_squad(20, seed=3, split="validation")
    assert paragraphs(validation)[0]["context"] != paragraphs(base)[0]["context"]


def test_official_squad_layout(v1: dict[str, Any]) -> None:
    assert isinstance(v1["version"], str)
    assert isinstance(v1["data"], list) and v1["data"]
    # One article per ten paragraphs.
    assert len(v1["data"]) == (N_CONTEXTS + 9) // 10
    assert len(paragraphs(v1)) == N_CONTEXTS
    for article in v1["data"]:
        assert isinstance(article["title"], str) and article["title"]
        for paragraph in article["paragraphs"]:
            assert isinstance(paragraph["context"], str) and paragraph["context"]
            assert paragraph["qas"]
            for qa in paragraph["qas"]:
                assert isinstance(qa["id"], str) and qa["id"]
                assert isinstance(qa["question"], str) and qa["question"].endswith("?")
                assert len(qa["answers"]) == 1
                assert set(qa["answers"][0]) == {"text", "answer_start"}
    # The whole document survives a JSON round trip unchanged (only JSON types inside).
    assert json.loads(json.dumps(v1)) == v1


def test_question_ids_unique(v2: dict[str, Any]) -> None:
    ids = [qa["id"] for p in paragraphs(v2) for qa in p["qas"]]
    assert len(ids) == len(set(ids))


def test_every_answer_is_at_its_answer_start(v1: dict[str, Any], v2: dict[str, Any]) -> None:
    checked = 0
    for dataset in (v1, v2):
        for paragraph in paragraphs(dataset):
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                for answer in qa["answers"]:
                    start = answer["answer_start"]
                    assert answer["text"]
                    assert context[start:start + len(answer["text"])] == answer["text"], qa["id"]
                    checked += 1
    assert checked > N_CONTEXTS


def test_several_facts_per_context(v1: dict[str, Any]) -> None:
    counts = [len(parse_facts(p["context"])) for p in paragraphs(v1)]
    assert min(counts) >= 4
    assert all(len(p["qas"]) >= 2 for p in paragraphs(v1))


def test_answers_match_the_asked_subjects_fact(v1: dict[str, Any]) -> None:
    for paragraph in paragraphs(v1):
        facts = parse_facts(paragraph["context"])
        for qa in paragraph["qas"]:
            relation, subject = parse_question(qa["question"])
            expected = [a for r, s, a in facts if r == relation and s == subject]
            assert expected == [qa["answers"][0]["text"]], qa["id"]


def test_each_asked_relation_is_stated_once_by_default(v1: dict[str, Any]) -> None:
    for paragraph in paragraphs(v1):
        facts = parse_facts(paragraph["context"])
        for qa in paragraph["qas"]:
            relation, subject = parse_question(qa["question"])
            assert [s for r, s, _ in facts if r == relation] == [subject], qa["id"]


@pytest.mark.parametrize("templates", ["core", "distinct"])
def test_every_answer_has_a_same_type_distractor(templates: str) -> None:
    """Another entity of the answer's type (a city for a city, a year for a year) is present."""
    from qa.task.synthetic import TEMPLATES

    relations = {r.name: r for r in TEMPLATES[templates]}
    data = generate_squad(N_CONTEXTS, seed=7, templates=templates, questions_per_context=4)
    statements = [(r.name, _template_regex(t)) for r in relations.values() for t in r.statements]
    questions = [(r.name, _template_regex(t)) for r in relations.values() for t in r.questions]

    def parse(question: str) -> str:
        (name,) = {n for n, rx in questions if rx.fullmatch(question)}
        return name

    for paragraph in paragraphs(data):
        facts = []
        for sentence in re.split(r"(?<=\.) ", paragraph["context"]):
            (fact,) = {(n, m["s"], m["a"]) for n, rx in statements if (m := rx.fullmatch(sentence))}
            facts.append(fact)
        for qa in paragraph["qas"]:
            kind = relations[parse(qa["question"])].answer
            same_type = [e for r, s, a in facts for e, k in ((s, relations[r].subject),
                                                             (a, relations[r].answer)) if k == kind]
            others = [e for e in same_type if e != qa["answers"][0]["text"]]
            assert others, (qa["id"], kind, same_type)


@pytest.mark.parametrize("templates", ["core", "distinct", "overlapping"])
def test_each_answer_type_has_two_relations_in_the_harder_sets(templates: str) -> None:
    """So that no answer type alone gives the answer away."""
    from qa.task.synthetic import TEMPLATES

    kinds = Counter(r.answer for r in TEMPLATES[templates])
    assert min(kinds.values()) >= 2, kinds


def test_forms_answers_have_five_forms_and_persons_and_cities_need_their_slot(
        v1: dict[str, Any]) -> None:
    """The default set: one relation per answer form; a founder's name or a birthplace is not
    given away by its form, because persons and cities are also subjects of other facts."""
    assert sorted(r.answer for r in RELATIONS) == ["city", "colour", "number", "person", "year"]
    relations = {r.name: r for r in RELATIONS}
    slot_needed = asked = 0
    for paragraph in paragraphs(v1):
        facts = parse_facts(paragraph["context"])
        for qa in paragraph["qas"]:
            kind = relations[parse_question(qa["question"])[0]].answer
            if kind not in ("person", "city"):
                continue
            asked += 1
            entities = {e for r, s, a in facts for e, k in ((s, relations[r].subject),
                                                            (a, relations[r].answer)) if k == kind}
            slot_needed += len(entities) > 1
    assert asked and slot_needed / asked > 0.9


def _stems(template: str) -> set[str]:
    """Lower-cased 4-letter word prefixes ("plays" and "play" share "play"), slots left out."""
    return {w.strip("?.,").lower()[:4] for w in template.split() if "{" not in w}


def test_questions_share_a_key_word_with_their_statement_only() -> None:
    stems = {r.name: set().union(*map(_stems, r.statements)) for r in RELATIONS}
    for relation in RELATIONS:
        others = set().union(*(w for name, w in stems.items() if name != relation.name))
        for question in relation.questions:
            assert (_stems(question) & stems[relation.name]) - others, (relation.name, question)


def _words(template: str) -> set[str]:
    return set(re.findall(r"[a-z]+", template.replace("{s}", "").replace("{a}", "").lower()))


@pytest.mark.parametrize("templates", ["forms", "core", "distinct"])
def test_distinct_templates_share_each_key_word_with_one_relation_only(templates: str) -> None:
    """Generators v8+: a question's words that occur in any statement are its own relation's
    key word(s) or function words that occur in the statements of three or more relations."""
    from qa.task.synthetic import TEMPLATES

    relations = TEMPLATES[templates]
    statement_words = {r.name: set().union(*map(_words, r.statements)) for r in relations}
    counts = Counter(w for words in statement_words.values() for w in words)
    function_words = {"a", "has", "in", "is", "of", "the", "was"}
    assert {w for w, n in counts.items() if n >= 3} <= function_words
    for relation in relations:
        others = set().union(*(w for n, w in statement_words.items() if n != relation.name))
        other_questions = set().union(*(_words(q) for r in relations if r is not relation
                                        for q in r.questions))
        for question in relation.questions:
            words = _words(question) - function_words
            assert not words & others, (relation.name, question, words & others)
            keys = words & statement_words[relation.name]
            assert keys and not keys & other_questions, (relation.name, question)


def test_overlapping_templates_remain_available_and_parse() -> None:
    from qa.task.synthetic import OVERLAPPING_RELATIONS, TEMPLATES

    assert TEMPLATES["overlapping"] is OVERLAPPING_RELATIONS
    data = generate_squad(10, seed=3, templates="overlapping")
    statements = [(r.name, _template_regex(t)) for r in OVERLAPPING_RELATIONS
                  for t in r.statements]
    for paragraph in paragraphs(data):
        for sentence in re.split(r"(?<=\.) ", paragraph["context"]):
            assert any(rx.fullmatch(sentence) for _, rx in statements), sentence
    with pytest.raises(ValueError, match="templates must be one of"):
        generate_squad(2, seed=1, templates="easy")


def test_core_is_four_answer_types_of_two_relations_each() -> None:
    from qa.task.synthetic import TEMPLATES

    kinds = Counter(r.answer for r in TEMPLATES["core"])
    assert kinds == {"city": 2, "year": 2, "person": 2, "number": 2}
    assert len(TEMPLATES["distinct"]) == len(TEMPLATES["overlapping"]) == 17


def test_values_are_whole_words() -> None:
    """Years of one century and numbers as 'N thousand': no digit-piece span boundaries."""
    data = generate_squad(40, seed=9, templates="core", questions_per_context=4)
    for paragraph in paragraphs(data):
        for sentence in re.split(r"(?<=\.) ", paragraph["context"]):
            (relation, _, answer), = {(n, m["s"], m["a"]) for n, rx in CORE_STATEMENTS
                                      if (m := rx.fullmatch(sentence))}
            if relation in ("wedding", "established"):
                assert re.fullmatch(r"19\d\d", answer), answer
            if relation in ("area", "population"):
                assert re.fullmatch(r"\d{1,2} thousand", answer), answer


def test_distractor_subjects_state_the_asked_relation_for_others() -> None:
    data = generate_squad(30, seed=7, distractor_subjects=2)
    for paragraph in paragraphs(data):
        facts = parse_facts(paragraph["context"])
        for qa in paragraph["qas"]:
            relation, subject = parse_question(qa["question"])
            subjects = [s for r, s, _ in facts if r == relation]
            assert subject in subjects and len(subjects) == 3, (qa["id"], subjects)
            expected = [a for r, s, a in facts if r == relation and s == subject]
            assert expected == [qa["answers"][0]["text"]]


@pytest.mark.parametrize("kwargs", [{"questions_per_context": 0},
                                    {"questions_per_context": len(RELATIONS)},
                                    {"distractor_subjects": -1}])
def test_bad_generator_arguments_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be"):
        generate_squad(2, seed=1, **kwargs)


def test_long_contexts_exist(v1: dict[str, Any]) -> None:
    lengths = [len(p["context"]) for p in paragraphs(v1)]
    long = [n for n in lengths if n > 1500]
    assert long, f"no context over 1,500 characters (longest {max(lengths)})"
    assert len(long) < len(lengths), "every context is long; short ones are expected too"


def test_no_long_contexts_when_fraction_is_zero() -> None:
    data = generate_squad(30, seed=5, long_fraction=0.0)
    assert max(len(p["context"]) for p in paragraphs(data)) < 1500


def test_v1_has_no_unanswerable_questions(v1: dict[str, Any]) -> None:
    assert "v1" in v1["version"]
    for paragraph in paragraphs(v1):
        for qa in paragraph["qas"]:
            assert qa["answers"]
            assert not qa.get("is_impossible", False)


def test_v2_has_unanswerable_questions(v2: dict[str, Any]) -> None:
    assert "v2" in v2["version"]
    flags: Counter[bool] = Counter()
    for paragraph in paragraphs(v2):
        facts = parse_facts(paragraph["context"])
        present = {s for _, s, _ in facts}
        for qa in paragraph["qas"]:
            assert isinstance(qa["is_impossible"], bool)
            flags[qa["is_impossible"]] += 1
            if qa["is_impossible"]:
                assert qa["answers"] == []
                relation, subject = parse_question(qa["question"])
                # It asks for a relation the context states for no one (about a fresh subject).
                assert not any(r == relation for r, _, _ in facts)
                assert subject not in present | {a for _, _, a in facts}
            else:
                assert len(qa["answers"]) == 1
    assert flags[True] > 0 and flags[False] > 0
    share = flags[True] / (flags[True] + flags[False])
    assert 0.2 < share < 0.6  # asked for 0.4


def test_named_entities_do_not_repeat_within_a_context(v2: dict[str, Any]) -> None:
    """A subject stated twice (or also some fact's answer) would make its question ambiguous."""
    for paragraph in paragraphs(v2):
        facts = parse_facts(paragraph["context"])
        subjects = Counter(s for _, s, _ in facts)
        assert max(subjects.values()) == 1, paragraph["qas"][0]["id"]
        assert not set(subjects) & {a for _, _, a in facts}
