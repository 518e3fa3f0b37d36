"""``python -m synth``: the area/timing/power report of every ABFT variant (issue 4).

Not built yet. Until it is, this says so instead of failing obscurely."""
import sys

if __name__ == "__main__":
    sys.exit("python -m synth: the synthesis report is not implemented yet (issue 4 is open); "
             "Verilog for any configuration comes from `python -m hw generate`.")
