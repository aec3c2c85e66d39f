"""`scorer train-embedder`: fine-tune the bi-encoder that `scorer candidates` embeds with, on labelled pairs.

The positive pairs (label >= 0.5) of the training files teach a sentence-transformers model (the offline
all-MiniLM-L6-v2 by default) to put two titles of one product close together, with
MultipleNegativesRankingLoss: each pair's candidate is the right answer among every other candidate of the
batch. Pairs of one product (a connected component of the positives) never share a batch, so no in-batch
negative is in fact the same product. Texts are cut to their product name first (`--text product-name`, the
first segment of the title: what `scorer candidates` embeds). The result is a sentence-transformers model
directory that `scorer candidates --embedder-model DIR` exports and uses; it holds `train_embedder.json`
(the settings, pairs, steps and seconds). It appears at OUTPUT only when training succeeded.

    scorer train-embedder --train pairs/*.parquet -o embedder-model/
    scorer candidates catalogue.parquet -o pairs.parquet --id-col id --text-col title \\
        --embedder-model embedder-model/ --embedder embedder-onnx/
"""
