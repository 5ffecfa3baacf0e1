"""A labelled messy corpus for measuring curation: the tests' quality bar and the benchmark share it.

Every document is generated from seeded templates, so the labels are exact:
- good: unique English prose (paragraphs of sentences from a large vocabulary), which every filter should keep;
- exact duplicate groups: 2-4 copies of a good document differing only in case and spacing;
- near-duplicate pairs: a good document and a copy with a few words replaced, inserted or deleted;
- PII: good documents with injected e-mail addresses, phone numbers, Luhn-valid card numbers and IP addresses;
- spam: keyword stuffing, one boilerplate line repeated, lorem ipsum;
- other languages: French, German and Spanish prose;
- malformed lines: bad JSON, a non-string text, a missing text, invalid UTF-8.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from components.common.pii import luhn_valid

NOUNS = (
    "river market garden teacher village engine harbor library season kitchen mountain letter station museum "
    "forest bridge window theater country doctor farmer student painter island valley castle factory machine "
    "journey morning evening winter summer autumn spring climate ocean desert city street council company "
    "workshop festival journal record courtyard lantern orchard meadow canal tower temple market harvest "
    "network archive signal channel border coast colony voyage treaty empire ledger compass anchor rail "
    "museum cellar granary vineyard pasture quarry furnace mill bakery tavern chapel monastery fortress "
    "academy clinic gallery studio observatory laboratory telescope printer wagon carriage steamer canal "
    "shipyard lighthouse cathedral palace estate parish county province region district settlement"
).split()
VERBS = (
    "describes shapes carries follows supports gathers protects reveals connects explains divides measures "
    "replaces improves records restores visits crosses builds changes collects studies opens closes guides "
    "welcomes reaches surrounds feeds trains teaches paints crafts repairs designs observes charts maps "
    "finances governs rebuilds supplies shelters inspires documents preserves transforms"
).split()
ADJECTIVES = (
    "quiet ancient narrow bright careful modern distant gentle heavy local northern southern eastern western "
    "busy famous hidden early late broad small large public private rural urban wooden stone golden silver "
    "coastal seasonal careful patient curious generous humble proud steady sudden rapid slow remote"
).split()
ADVERBS = "slowly quickly often rarely carefully quietly openly gradually eventually finally usually sometimes".split()
TEMPLATES = (
    "The {a} {n} {v} the {a} {n} near the {n}.",
    "In the {a} {n}, every {n} {v} a {a} {n} {d}.",
    "A {a} {n} {d} {v} the {n} of the {a} {n}.",
    "Many people believe that the {n} {v} the {n} because the {n} is {a}.",
    "During the {n}, the {a} {n} {v} a {n} and {v} the {a} {n}.",
    "Without the {n}, no {a} {n} could have {v2} the {n} with such {a} care.",
    "Historians say the {n} {d} {v} each {a} {n} that {v} the {n}.",
    "When the {n} {v} the {a} {n}, the {n} {d} {v} the {n}.",
)
FOREIGN = {
    "fr": (
        "Le {n} {a} {v} la {n} près de la {n}.",
        "Dans la {n} {a}, chaque {n} {v} une {n} avec beaucoup de soin.",
        "Les habitants pensent que la {n} {v} le {n} parce que le {n} est {a}.",
    ),
    "de": (
        "Der {a} {n} {v} die {n} in der Nähe der {n}.",
        "In der {a} {n} {v} jeder {n} eine {n} mit großer Sorgfalt.",
        "Viele Leute glauben, dass die {n} den {n} {v}, weil der {n} {a} ist.",
    ),
    "es": (
        "El {n} {a} {v} la {n} cerca de la {n}.",
        "En la {n} {a}, cada {n} {v} una {n} con mucho cuidado.",
        "Muchas personas creen que la {n} {v} el {n} porque el {n} es {a}.",
    ),
}
FOREIGN_WORDS = {
    "fr": (
        "rivière village maison ville montagne forêt école fenêtre jardin marché".split(),
        "ancien tranquille étroit lumineux moderne lointain".split(),
        "décrit porte suit protège rassemble révèle".split(),
    ),
    "de": (
        "Fluss Dorf Haus Stadt Berg Wald Schule Fenster Garten Markt".split(),
        "alte ruhige schmale helle moderne ferne".split(),
        "beschreibt trägt folgt schützt sammelt zeigt".split(),
    ),
    "es": (
        "río pueblo casa ciudad montaña bosque escuela ventana jardín mercado".split(),
        "antiguo tranquilo estrecho luminoso moderno lejano".split(),
        "describe lleva sigue protege reúne revela".split(),
    ),
}
SPAM_KEYWORDS = "buy cheap pills online discount casino bonus free money click here best price win now".split()
LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et "
    "dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex "
    "ea commodo consequat."
)


@dataclass
class Labels:
    good: list[str] = field(default_factory=list)  # unique good documents (incl. those carrying PII)
    exact_groups: list[list[str]] = field(default_factory=list)
    near_pairs: list[tuple[str, str]] = field(default_factory=list)
    pii: dict[str, list[str]] = field(default_factory=dict)  # id -> injected PII strings
    spam: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    malformed: int = 0

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _luhn_card(rng: random.Random) -> str:
    body = "4" + "".join(str(rng.randrange(10)) for _ in range(14))
    text = body + next(d for d in "0123456789" if luhn_valid(body + d))  # exactly one check digit fits
    return " ".join(text[i : i + 4] for i in range(0, 16, 4))


def _pii_strings(rng: random.Random) -> list[str]:
    user = rng.choice(NOUNS) + str(rng.randrange(1000))
    return [
        f"{user}@{rng.choice(NOUNS)}-mail.com",
        f"({rng.randrange(200, 999)}) {rng.randrange(200, 999)}-{rng.randrange(1000, 9999)}",
        _luhn_card(rng),
        f"{rng.randrange(11, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
    ]


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def sentence(self) -> str:
        r = self.rng
        return r.choice(TEMPLATES).format_map(_Slots(r))

    def prose(self, paragraphs: tuple[int, int] = (3, 6), sentences: tuple[int, int] = (4, 7)) -> str:
        r = self.rng
        return "\n\n".join(
            " ".join(self.sentence() for _ in range(r.randint(*sentences))) for _ in range(r.randint(*paragraphs))
        )

    def foreign(self, lang: str) -> str:
        r = self.rng
        nouns, adjectives, verbs = FOREIGN_WORDS[lang]
        slots = {"n": nouns, "a": adjectives, "v": verbs}
        sentence = lambda: r.choice(FOREIGN[lang]).format_map(_Slots(r, slots))  # noqa: E731
        return "\n\n".join(" ".join(sentence() for _ in range(r.randint(4, 7))) for _ in range(r.randint(3, 5)))

    def spam(self) -> str:
        r = self.rng
        kind = r.randrange(3)
        if kind == 0:  # keyword stuffing
            return "\n".join(
                " ".join(r.choices(SPAM_KEYWORDS, k=r.randint(8, 14))) + "!" for _ in range(r.randint(8, 20))
            )
        if kind == 1:  # one boilerplate line repeated
            line = self.sentence()
            return "\n".join([line] * r.randint(10, 30) + [self.sentence()])
        return "\n\n".join([LOREM] * r.randint(2, 6))

    def near_copy(self, text: str) -> str:
        """A copy with 1-3 single-word edits (replace, insert or delete), a few percent of the n-grams."""
        r = self.rng
        words = text.split(" ")
        for _ in range(r.randint(1, 3)):
            position = r.randrange(1, len(words) - 1)
            edit = r.randrange(3)
            if edit == 0:
                words[position] = r.choice(NOUNS)
            elif edit == 1:
                words.insert(position, r.choice(ADJECTIVES))
            else:
                del words[position]
        return " ".join(words)

    @staticmethod
    def case_and_space_variant(text: str) -> str:
        return text.upper().replace(". ", ".   ")


class _Slots(dict):
    def __init__(self, rng: random.Random, words: dict | None = None) -> None:
        super().__init__()
        self.rng = rng
        self.words = words or {"n": NOUNS, "a": ADJECTIVES, "v": VERBS, "d": ADVERBS, "v2": VERBS}

    def __missing__(self, key: str) -> str:
        word = self.rng.choice(self.words[key])
        return word.removesuffix("s") + "d" if key == "v2" else word


def generate(directory: str | Path, documents: int, seed: int = 0, malformed: bool = True, files: int = 2) -> Labels:
    """Write about `documents` records as `files` JSONL files into `directory`; return the labels.

    Mix: 60% good (a tenth with PII), 8% exact-duplicate groups, 8% near-duplicate pairs, 12% spam,
    6% other languages, plus malformed lines (1 per 200 documents) when `malformed` is true.
    """
    gen, labels = Generator(seed), Labels()
    records: list[dict] = []
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)

    def add(kind: str, text: str) -> str:
        doc_id = f"{kind}-{len(records):07d}"
        records.append({"id": doc_id, "text": text, "source": f"synthetic/{kind}", "license": "CC0-1.0"})
        return doc_id

    while len(records) < documents:
        roll = gen.rng.random()
        if roll < 0.60:
            text = gen.prose()
            if gen.rng.random() < 0.1:
                pii = _pii_strings(gen.rng)
                sentences = text.split(". ")
                for value in pii:
                    sentences.insert(gen.rng.randrange(len(sentences)), f"Contact {value} for details")
                doc_id = add("good", ". ".join(sentences))
                labels.pii[doc_id] = pii
            else:
                doc_id = add("good", text)
            labels.good.append(doc_id)
        elif roll < 0.68:
            text = gen.prose()
            copies = gen.rng.randint(2, 4)
            labels.exact_groups.append(
                [add("exact", text if i == 0 else gen.case_and_space_variant(text)) for i in range(copies)]
            )
        elif roll < 0.76:
            text = gen.prose(paragraphs=(4, 6))
            labels.near_pairs.append((add("near", text), add("near", gen.near_copy(text))))
        elif roll < 0.88:
            labels.spam.append(add("spam", gen.spam()))
        else:
            labels.foreign.append(add("foreign", gen.foreign(gen.rng.choice(sorted(FOREIGN)))))
    gen.rng.shuffle(records)

    lines = [json.dumps(r, ensure_ascii=False).encode() for r in records]
    if malformed:
        bad = [
            b'{"id": "broken", "text": "no closing brace"',
            b'{"id": "number", "text": 42}',
            b'{"id": "no-text"}',
            b'{"id": "latin1", "text": "caf\xe9 au lait"}',
        ]
        for index in range(max(1, documents // 200)):
            lines.insert(gen.rng.randrange(len(lines)), bad[index % len(bad)])
            labels.malformed += 1
    per_file = -(-len(lines) // files)
    for number, start in enumerate(range(0, len(lines), per_file)):
        (out / f"part-{number:04d}.jsonl").write_bytes(b"\n".join(lines[start : start + per_file]) + b"\n")
    return labels
