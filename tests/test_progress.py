from lstmlab.train.progress import epoch_progress


def test_progress_bar_shows_epochs_and_losses(capsys):
    with epoch_progress(3, "stateful") as progress:
        progress.advance(0.5)
        progress.advance(0.25, val_loss=0.125)
    err = capsys.readouterr().err
    assert "stateful" in err and "2/3" in err
    assert "loss 0.25" in err and "val_loss 0.125" in err


def test_quiet_prints_nothing(capsys):
    with epoch_progress(3, "stateful", quiet=True) as progress:
        progress.advance(0.5)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
