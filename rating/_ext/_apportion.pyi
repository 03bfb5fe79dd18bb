import numpy as np
import numpy.typing as npt

def split_largest_remainder(
    offsets: npt.NDArray[np.int64],
    totals: npt.NDArray[np.int64],
    weights: npt.NDArray[np.int64],
    keys: npt.NDArray[np.int64],
    shares: npt.NDArray[np.int64],
) -> None: ...
