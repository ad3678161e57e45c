"""Chapter 1 only: the d2l-style BERT written from scratch, SNLI pairs, its training loop
and the asset registry of d2l's pretrained zips."""
