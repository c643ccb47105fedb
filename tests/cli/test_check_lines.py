"""`daq check` on benches whose Modbus RTU controllers share one RS-485 line."""

from daq.cli import main

HEAD = 'schema = 1\n[bench]\nid = "rtu"\n[journal]\npath = "j.db"\n'


def controller(name, device_id, address, interval):
    return (
        f'[[instrument]]\nname = "{name}"\ndriver = "watlow_ezzone_pm"\naddress = "{address}"\n'
        f"poll_interval = {interval}\n[instrument.options]\ndevice_id = {device_id}\n"
    )


def test_a_line_polled_beyond_its_capacity_is_a_warning(tmp_path, capsys):
    line = "rtu:///dev/ttyUSB0?baudrate=9600"
    config = tmp_path / "bench.toml"
    config.write_text(HEAD + "".join(controller(f"c{i}", i, line, 0.05) for i in range(1, 5)))
    assert main(["check", str(config)]) == 0
    out = capsys.readouterr().out
    assert "warning: line /dev/ttyUSB0 at 9600 baud needs" in out
    assert "for its 4 controllers: polls will fall behind" in out


def test_one_port_with_two_baud_rates_is_a_problem(tmp_path, capsys):
    config = tmp_path / "bench.toml"
    config.write_text(
        HEAD
        + controller("a", 1, "rtu:///dev/ttyUSB0?baudrate=9600", 2.0)
        + controller("b", 2, "rtu:///dev/ttyUSB0?baudrate=19200", 2.0)
    )
    assert main(["check", str(config)]) == 1
    err = capsys.readouterr().err
    assert "/dev/ttyUSB0" in err and "9600" in err and "19200" in err


def test_a_quiet_line_says_nothing(tmp_path, capsys):
    line = "rtu:///dev/ttyUSB0?baudrate=19200"
    config = tmp_path / "bench.toml"
    config.write_text(HEAD + controller("a", 1, line, 2.0) + controller("b", 2, line, 2.0))
    assert main(["check", str(config)]) == 0
    assert "warning" not in capsys.readouterr().out
