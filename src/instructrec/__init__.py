"""instructrec: recommendation as natural-language instruction following.

A classical retriever proposes candidates; a language model, instruction-tuned with LoRA on
instructions generated from interaction logs, reranks them following what the user asked
for (Zhang et al. 2023, "Recommendation as Instruction Following", arXiv:2305.07001).
"""

__version__ = "0.1.0"
