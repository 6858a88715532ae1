"""Everything that touches the model and the device: the model store on the volume, the
engine (load, encode, decode), the scheduler thread (``scheduler``: the thread; ``sequence``: a
sequence and its phase; ``step_plan``: each step planned; ``step_runner``: the plan run) with its
lanes, slot KV cache and batched decode loop, the prompt, the streaming codec decode, the runaway
guard and the compiled-kernel cache. It may import only ``contract``; nothing here knows about
jobs, audio files, S3 or HTTP."""
