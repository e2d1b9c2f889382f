from services.metadata.server import main

main()
