"""The code the chapters write from scratch: chapter 1's d2l-style BERT, its SNLI inputs, its
training loop and the asset registry of d2l's pretrained zips; chapter 5's hand-written LoRA
layer. The training pipeline never imports from here."""
