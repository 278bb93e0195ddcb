"""The instruction reranker at inference: what it is asked to order and how its answer reads.

- `candidates`: instruction-aware candidate sets (the retriever's top N, the catalogue items
  matching the parsed instruction, dense retrieval with the query tower; never a seen item);
- `explain`: readable titles, what the instruction was understood as, a calibrated score and
  a short reason per item (`Recommendation`, `Answer`);
- `joint`, `joint_fit`: an experimental joint reader that reads the request and all candidates
  in one MiniLM pass and scores each candidate from its own span (issue 15; measured on
  validation in docs/joint.md, not shipped).
"""
