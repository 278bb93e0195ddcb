"""Data room: `Dataset`, readers, the embedded MovieLens-100K, splits and candidate files."""

from .atomic import read_atomic, write_atomic
from .dataset import DISLIKED_RATING, LIKED_RATING, Dataset
from .errors import DataError
from .movielens import load_movielens_100k, movielens_100k_path
from .split import (
                    CANDIDATE_SETS,
                    HISTORY_LEN,
                    Split,
                    add_candidates,
                    leave_one_out,
                    load_split,
                    make_split,
                    save_split,
)

__all__ = ["Dataset", "DataError", "Split", "read_atomic", "write_atomic", "load_movielens_100k",
           "movielens_100k_path", "leave_one_out", "add_candidates", "make_split", "save_split",
           "load_split", "CANDIDATE_SETS", "HISTORY_LEN", "LIKED_RATING", "DISLIKED_RATING"]
