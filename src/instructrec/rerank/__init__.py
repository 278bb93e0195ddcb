"""The instruction reranker at inference: what it is asked to order and how its answer reads.

- `candidates`: instruction-aware candidate sets (the retriever's top N, the catalogue items
  matching the parsed instruction, dense retrieval with the query tower; never a seen item);
- `explain`: readable titles, what the instruction was understood as, a calibrated score and
  a short reason per item (`Recommendation`, `Answer`).
"""
