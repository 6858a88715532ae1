from higgs_worker.text.chunking import split_speakers, split_text, split_words


def test_short_text_is_one_chunk():
    assert split_text("Hello there. How are you?", "auto", 100) == ["Hello there. How are you?"]


def test_word_chunks_keep_sentences_and_respect_the_limit():
    text = " ".join(f"This is sentence {i}." for i in range(10))  # 4 words each
    chunks = split_text(text, "word", 10)
    assert all(len(c.split()) <= 10 for c in chunks)
    assert " ".join(chunks) == text
    assert all(c.endswith(".") for c in chunks)


def test_a_sentence_longer_than_the_limit_is_cut_at_words():
    chunks = split_words("one two three four five six seven", 3)
    assert chunks == ["one two three", "four five six", "seven"]


def test_speaker_turns_are_chunks_with_their_tags():
    text = "[SPEAKER0] Hi there. [SPEAKER1] Hello! [SPEAKER0] Bye."
    assert split_speakers(text) == ["[SPEAKER0] Hi there.", "[SPEAKER1] Hello!", "[SPEAKER0] Bye."]
    assert split_text(text, "auto", 100) == split_speakers(text)


def test_auto_cuts_long_turns_and_keeps_the_tag():
    text = "[SPEAKER0] " + " ".join(["word"] * 7) + ". [SPEAKER1] ok."
    chunks = split_text(text, "auto", 3)
    assert chunks[0].startswith("[SPEAKER0] ") and chunks[-1] == "[SPEAKER1] ok."
    assert sum(1 for c in chunks if c.startswith("[SPEAKER0]")) == 3


def test_none_keeps_everything_and_unbalanced_tags_are_text():
    text = " ".join(["word"] * 300)
    assert split_text(text, "none", 10) == [text]
    assert split_text("[SPEAKER0 hello", "auto", 100) == ["[SPEAKER0 hello"]
