"""The user's text: speaker tags, sentences and words, and how long text is split into
chunks. Pure string work, no audio and no model; it may import only ``contract``. It sits
below ``audio`` because segments and subtitles split text the same way synthesis does."""
