from paperlab.cli import main

main()
