from uniaudio_lm.textgen import NOUNS, sentences


def test_sentences_deterministic_distinct_and_excluding():
    a = sentences(300, seed=3)
    assert a == sentences(300, seed=3) and len(set(a)) == 300
    assert a != sentences(300, seed=4)
    held = set(a[:50])
    b = sentences(300, seed=3, exclude=held)
    assert not held & set(b)
    assert all(4 <= len(s.split()) <= 12 and s[-1] in ".?" and s[0].isupper() for s in a)
    assert len(set(NOUNS)) == len(NOUNS)
    words = {w.strip(".?").lower() for s in sentences(3000, seed=0) for w in s.split()}
    assert len(words) > 300  # a vocabulary, not a handful of templates
