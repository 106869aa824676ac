"""The multi-label conditional GAN lab's data: a procedural stand-in for i-CLEVR, its labels, its evaluator.

Modules:
    render     -- draws a scene of 1 to 3 objects (3 shapes x 8 colours) on a grey floor (the stand-in images).
    data       -- the label files (objects.json, train.json, test.json, new_test.json), conditions as
                  24-hot vectors (with the checks students' inputs get), and the training set as tensors
                  (the rendered stand-in, cached; or the course's original iclevr/ images when a user has them).
    evaluator  -- the multi-label classifier that judges generated images (per-object accuracy on the test
                  conditions, the course's metric) and its features for a Frechet distance.
"""
