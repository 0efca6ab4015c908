import sys

from qvdoctor.doctor.triage.docs import main

sys.exit(main())
