import numpy as np
import pytest
import torch
from PIL import Image

from made import MADE
from made.cli import main
from made.model.masks import input_degrees
from made.plots import dimension_path_counts, image_grid, save_mask_picture


@pytest.mark.parametrize("direct", [False, True])
def test_dimension_path_counts_are_strictly_lower_triangular_in_the_ordering(direct):
    model = MADE(7, [9, 9], ordering="random", direct=direct, num_masks=3, seed=4)
    for index in range(3):
        model.set_mask(index)
        counts, ordering = dimension_path_counts(model)
        assert torch.equal(ordering, model.ordering)
        assert torch.all(torch.triu(counts) == 0) and counts.tril(-1).sum() > 0
        raw = model.output.mask.double() @ model.hidden[1].mask.double() @ model.hidden[0].mask.double()
        if direct:
            raw = raw + model.direct.mask.double()  # paths in natural index order
        position = input_degrees(model.ordering) - 1
        assert torch.equal(counts[position][:, position], raw)


def test_mask_picture_is_a_png(tmp_path):
    model = MADE(4, [6, 6], ordering="random", direct=True, seed=0)
    save_mask_picture(model, tmp_path / "m.png", title="test")
    with Image.open(tmp_path / "m.png") as image:
        assert image.format == "PNG" and image.size[0] > 600 and image.size[1] > 300
    with pytest.raises(ValueError, match="small"):
        save_mask_picture(MADE(50, [8]), tmp_path / "big.png")


def test_made_masks_command(tmp_path, capsys):
    out = tmp_path / "masks.png"
    assert (
        main(["masks", "--inputs", "4", "--hidden", "6", "6", "--ordering", "random", "--direct", "--out", str(out)])
        == 0
    )
    assert out.is_file() and "strictly lower triangular" in capsys.readouterr().out
    assert main(["masks", "--masks", "3", "--mask-index", "2", "--out", str(tmp_path / "k.png")]) == 0
    assert main(["masks", "--out", str(tmp_path / "m.jpg")]) == 2
    assert "png" in capsys.readouterr().err
    data = tmp_path / "d.csv"
    np.savetxt(data, np.random.RandomState(0).randint(0, 2, (50, 5)), fmt="%d", delimiter=",")
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--hidden", "8", "--epochs", "1", "--quiet"]) == 0
    assert main(["masks", str(run)]) == 0 and (run / "masks.png").is_file()


def test_image_grid_tiles():
    grid = image_grid(np.ones((3, 4)), (2, 2), columns=2, pad=1)
    assert grid.shape == (7, 7) and grid[1, 1] == 255 and grid[0, 0] == 128
