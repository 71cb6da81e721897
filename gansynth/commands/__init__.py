"""The commands people run (train, generate, evaluate, make_dataset, demo, export, report), each a
Hydra config in ``gansynth/conf`` and a function here; ``cli`` holds their shared entry point."""
