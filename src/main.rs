fn main() {
    std::process::exit(confluencefs::cli::main());
}
