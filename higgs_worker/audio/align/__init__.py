"""Word times by forced alignment: the text is known, only where each word plays is not.

- ``words``: the text's words as written (what a read-along highlights), the script a
  text is in, and the fallback that shares a span out by characters;
- ``english``: English pronunciations (the CMU dictionary shipped with PocketSphinx,
  numbers read out, a guess for words it lacks);
- ``aligner``: what every aligner takes and gives (``WordAligner``, ``WordTime``,
  ``AlignmentFailed``, the rate pieces are aligned at);
- ``pocketsphinx_aligner``: the aligner there is (PocketSphinx 5's forced alignment, English);
  ``registry``: which aligner serves which language;
- ``service``: runs aligners in helper processes (so alignment never holds the Python
  lock the model's scheduler thread needs) and never raises: a failure gives words
  shared out by characters, marked approximate, and says why.
"""
