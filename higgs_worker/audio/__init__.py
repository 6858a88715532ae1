"""What happens to audio after generation: codecs (encode, decode, resample), joins with
pauses and trimming, timed segments, subtitles, loudness and the queue's stream items.
Waveforms in, waveforms or bytes out; it may import ``contract`` and ``text``, never the
model, storage or a front door."""
