from dropserver.cli import main

# Guarded: the proof-of-work pool's worker processes must be able to import this module
# without starting another server (multiprocessing's "safe importing of main module").
if __name__ == "__main__":
    raise SystemExit(main())
