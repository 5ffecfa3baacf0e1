"""The published rules on real-looking documents: each fix of Gopher, C4, FineWeb and the presets that combine them."""

import pytest

from components.curate.marks import run_step, with_transforms
from components.curate.quality import (
    QualityConfig,
    c4,
    fineweb_quality,
    gopher_quality,
    ngram_repetition,
    quality_preset,
    quality_steps,
)

# A hard-wrapped book page (Jane Austen, "Pride and Prejudice", chapter 1; public domain): most lines end
# mid-sentence, which C4's terminal-punctuation line filter cannot tell from boilerplate.
BOOK = """It is a truth universally acknowledged, that a single man in possession
of a good fortune, must be in want of a wife.

However little known the feelings or views of such a man may be on his
first entering a neighbourhood, this truth is so well fixed in the minds
of the surrounding families, that he is considered the rightful property
of some one or other of their daughters.

"My dear Mr. Bennet," said his lady to him one day, "have you heard that
Netherfield Park is let at last?"

Mr. Bennet replied that he had not.

"But it is," returned she; "for Mrs. Long has just been here, and she
told me all about it."

Mr. Bennet made no answer.

"Do you not want to know who has taken it?" cried his wife impatiently.

"You want to tell me, and I have no objection to hearing it."

This was invitation enough."""

ENCYCLOPEDIA = (
    "The Forth Bridge is a cantilever railway bridge across the Firth of Forth in the east of Scotland.[1] "
    "It was opened on 4 March 1890 and spans a total length of 2,467 metres.[2][edit] "
    "The bridge was designed by the English engineers Sir John Fowler and Sir Benjamin Baker.[citation needed] "
    "It is considered a symbol of Scotland and was inscribed as a World Heritage Site in 2015. "
    "Construction began in 1882 and employed more than 4,000 workers at its peak. "
    "Its red colour has become a symbol of the country and appears on banknotes and stamps."
)


def _frame(spark, texts: dict[str, str]):
    return spark.createDataFrame(list(texts.items()), "id string, text string").transform(with_transforms)


def _reasons(spark, step, texts: dict[str, str]) -> dict[str, tuple[str | None, float | None]]:
    frame = step(_frame(spark, texts)).frame.select("id", "_reason", "_value").collect()
    return {row.id: (row._reason, row._value) for row in frame}


def _texts(spark, step, texts: dict[str, str]) -> dict[str, tuple[str | None, str]]:
    rows = step(_frame(spark, texts)).frame.select("id", "_reason", "text").collect()
    return {row.id: (row._reason, row.text) for row in rows}


def test_gopher_hash_and_ellipsis_ratios_are_two_rules(spark):
    """Gopher: "a symbol-to-word ratio greater than 0.1 for either the hash symbol or the ellipsis"."""
    words = BOOK.split()
    # a changelog-like page: about 7% of its words carry an issue number, about 7% end in an ellipsis
    both = " ".join(f"{w} #{i}" if i % 14 == 0 else f"{w}..." if i % 14 == 7 else w for i, w in enumerate(words))
    hashes = " ".join(f"{w} #{i}" if i % 7 == 0 else w for i, w in enumerate(words))
    reasons = _reasons(spark, lambda df: gopher_quality(df, QualityConfig()), {"both": both, "hashes": hashes})
    assert reasons["both"] == (None, None)  # 0.07 + 0.07 would fail a summed rule
    code, value = reasons["hashes"]
    assert code == "gopher_quality.hash_ratio" and 0.1 < value < 0.2


def test_stop_words_are_not_found_inside_snake_case(spark):
    identifiers = " ".join(["the_value", "of_type", "and_then", "to_string", "with_context"] * 12)
    texts = {"prose": identifiers.replace("_", " "), "identifiers": identifiers}
    reasons = _reasons(spark, lambda df: gopher_quality(df, QualityConfig()), texts)
    assert reasons["identifiers"][0] == "gopher_quality.stop_words" and reasons["identifiers"][1] == 0
    assert reasons["prose"][0] != "gopher_quality.stop_words"


def test_top_ngram_ties_are_broken_by_first_occurrence():
    """Two bigrams are each the most frequent; the one that occurs first is measured (a Counter's choice)."""
    top = ((2, 0.2),)
    long_pair, short_pair = "extraordinarily magnificent", "a b"
    filler = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
    long_first = f"{long_pair} {short_pair} {filler} {long_pair} {short_pair} {long_pair} {short_pair}"
    short_first = f"{short_pair} {long_pair} {filler} {short_pair} {long_pair} {short_pair} {long_pair}"
    rule, value = ngram_repetition(long_first, top, ())
    assert rule == "top_2_gram" and value == pytest.approx(len(long_pair) * 3 / len(long_first))
    assert ngram_repetition(short_first, top, ()) is None  # "a b" x 3 is 9 of 120 characters


def test_ngram_rules_see_a_repeated_word_pair_however_short_the_text():
    """A text without a repeated pair of words passes untouched; one repeated pair is measured in full."""
    top, dup = ((2, 0.2), (3, 0.18)), ((5, 0.15),)
    assert ngram_repetition("the cat saw the dog and the bird", top, dup) is None  # "the" x 3, no pair twice
    assert ngram_repetition("alone", top, dup) is None
    rule, value = ngram_repetition("big cat big cat", top, dup)  # "big cat" twice: 14 of 15 characters
    assert rule == "top_2_gram" and value == pytest.approx(14 / 15)
    unigram = ngram_repetition("big cat big cat", ((1, 0.3),), ())  # a top word needs no pair
    assert unigram == ("top_1_gram", pytest.approx(6 / 15))


def test_c4_line_rules_follow_the_released_code(spark):
    """c4_utils.clean_page: strip all whitespace, drop "..." and over-long-word lines, remove citations."""
    page = "\n".join(
        [
            "\tSee the notes below.",  # 4 words once the tab is stripped: under C4's 5
            "The ferry leaves the harbour every morning at seven...",  # an ellipsis is not an end mark
            "The archive keeps a copy of " + "x" * 1001 + " for reference.",
            ENCYCLOPEDIA,
        ]
    )
    reason, text = _texts(spark, lambda df: c4(df, quality_preset("c4")), {"page": page})["page"]
    assert reason is None
    assert text == ENCYCLOPEDIA.replace("[1]", "").replace("[2][edit]", "").replace("[citation needed]", "")


def test_c4_sentences_skip_abbreviations_and_count_closing_quotes(spark):
    cfg = QualityConfig(c4_terminal_punct=False, c4_min_words_per_line=0, c4_min_sentences=3)
    texts = {
        # one sentence with a title, a saint and initials: "Mr.", "St." and "J. R. R." end no sentence
        "abbreviations": "Mr. Smith walked past St. Mary's church with J. R. R. Tolkien on a Sunday.",
        # three sentences, two of them ended inside a closing quote
        "quotes": 'He said "Stop." She answered \u201cNo.\u201d Then they left.',
    }
    reasons = _reasons(spark, lambda df: c4(df, cfg), texts)
    assert reasons["abbreviations"] == ("c4.too_few_sentences", 1.0)
    assert reasons["quotes"] == (None, None)


def test_sentence_patterns_count_alike_in_spark_and_python(spark):
    """The real-text benchmark hands greenfm's sentence count to datatrove through Python's `regex`; the
    patterns must count there what Spark's Java regex counts."""
    from pyspark.sql import functions as F

    from components.curate.quality import sentence_count
    from components.curate.sentences import count_sentences

    texts = [
        "Mr. Smith walked past St. Mary's church with J. R. R. Tolkien on a Sunday.",
        'He said "Stop." She answered \u201cNo.\u201d Then they left.',
        "Wait... what?! It was e.g. a test.\nNo. 5 ends here.",
        ENCYCLOPEDIA,
    ]
    frame = spark.createDataFrame([(t,) for t in texts], ["text"])
    in_spark = [row.n for row in frame.select(sentence_count(F.col("text")).alias("n")).collect()]
    in_python = [count_sentences(t) for t in texts]
    assert in_spark == in_python and in_python[:2] == [1, 3]


def test_c4_curly_brace_and_lorem_ipsum_apply_to_the_kept_lines(spark):
    """A code line without end mark is dropped by the line filter before C4 looks for "{" (as released C4 did)."""
    page = ENCYCLOPEDIA.replace(". ", ".\n") + "\nif (ready) { start(); }\nLorem ipsum dolor sit amet"
    kept_lines = _reasons(spark, lambda df: c4(df, quality_preset("c4")), {"page": page})
    whole_text = _reasons(spark, lambda df: c4(df, QualityConfig(c4_doc_rules_on_kept_lines=False)), {"page": page})
    assert kept_lines["page"] == (None, None)
    assert whole_text["page"][0] == "c4.lorem_ipsum"


def test_fineweb_rules(spark):
    cfg = QualityConfig(fineweb_quality=True)
    menu = "\n".join(["Home", "About us", "Products", "Contact", "Careers", "The shop is open daily."] * 3)
    pairs = [
        (a, b) for a in ("Netherlands", "Luxembourg", "Switzerland", "Liechtenstein") for b in ("Portugal", "Slovakia")
    ]
    listing = "\n".join(f"{a}\u2013{b} agreement." for a, b in pairs)  # two words a line
    repeated = ENCYCLOPEDIA.replace(". ", ".\n") + "\nAll rights reserved by the harbour museum.\n" * 2
    wrapped = BOOK.replace("\n\n", "\n")
    headings = "\n".join(f"Chapter {i}: The Voyage of the {w} Ship" for i, w in enumerate("ABCDEFGHIJ"))
    reasons = _reasons(
        spark,
        lambda df: fineweb_quality(df, cfg),
        {"menu": menu, "listing": listing, "repeated": repeated, "book": wrapped, "headings": headings},
    )
    assert reasons["book"] == (None, None)
    assert reasons["headings"][0] == "fineweb_quality.line_punct_ratio" and reasons["headings"][1] == 0
    assert reasons["menu"][0] == "fineweb_quality.short_line_ratio"
    assert reasons["repeated"][0] == "fineweb_quality.char_dup_ratio"
    assert reasons["listing"][0] == "fineweb_quality.list_ratio" and reasons["listing"][1] > 0.3


def test_fineweb_keeps_hard_wrapped_prose_that_c4_cuts_apart(spark):
    """The default recipe keeps the book page whole; C4's terminal-punctuation line filter keeps only the lines
    that happen to end a sentence, so the opening of the novel is gone."""
    outcomes = {}
    for name in ("fineweb", "c4"):
        cfg = quality_preset(name)
        docs = _frame(spark, {"book": BOOK})
        for step in quality_steps(cfg):
            docs, _, _ = run_step(step(docs, cfg=cfg))
        (outcomes[name],) = [row.text for row in docs.collect()]
    assert outcomes["fineweb"] == BOOK.replace("\n\n", "\n")  # lines are stripped and rejoined, as C4 does
    assert "It is a truth universally acknowledged" not in outcomes["c4"]
    assert len(outcomes["c4"]) < len(BOOK) / 2


def test_presets_state_their_source_thresholds():
    fineweb, released_c4 = quality_preset("fineweb"), quality_preset("c4")
    assert (fineweb.c4_terminal_punct, fineweb.c4_min_words_per_line, fineweb.c4_min_sentences) == (False, 3, 5)
    assert fineweb.fineweb_quality and fineweb.gopher_quality and fineweb.gopher_repetition
    assert (released_c4.c4_min_words_per_line, released_c4.c4_min_sentences) == (5, 3)
    assert not (released_c4.gopher_quality or released_c4.gopher_repetition or released_c4.fineweb_quality)
    assert [s.__name__ for s in quality_steps(quality_preset("gopher"))] == ["gopher_repetition", "gopher_quality"]
