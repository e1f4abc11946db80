// Graphviz drawings of captured graphs, for docs/pictures.md.
//
// What it teaches: capturing a computation with xgrad::capture, naming its
// parameters through a module, and exporting it with Graph::to_dot.
//
// Run:    build/examples/draw_graphs [--out out/graphs]
//         dot -Tsvg out/graphs/seed_network.dot -o seed_network.svg
// Prints: each captured graph as a listing, and the files written.
// Writes to --out: seed_network.dot, the training loss of the founding
//         two-input network y = tanh(w1 x1 + w2 x2 + b) with mean squared
//         error (examples/seed_network.cpp trains it), and mlp_forward.dot,
//         the forward pass of the main job's 784-256-128-10 ReLU network on
//         a batch of 128 images.

#include <cstdio>
#include <filesystem>
#include <string>

#include <xgrad/xgrad.hpp>

#include "common/flags.hpp"

namespace {

using xgrad::Tensor;
namespace nn = xgrad::nn;

constexpr double kInitialWeight = 0.5;  // as in examples/seed_network.cpp
constexpr std::size_t kBatch = 128;

// The founding network's parameters, registered so that the graph names them.
class SeedNetwork : public nn::Module {
public:
    SeedNetwork()
        : w1(register_parameter("w1", Tensor(xt::xarray<double>{kInitialWeight}))),
          w2(register_parameter("w2", Tensor(xt::xarray<double>{kInitialWeight}))),
          b(register_parameter("b", Tensor(xt::xarray<double>{kInitialWeight}))) {}

    Tensor forward(const Tensor&) override {
        throw xgrad::not_implemented(
            "SeedNetwork::forward: the network takes x1 and x2 separately");
    }

    Tensor w1;
    Tensor w2;
    Tensor b;
};

void write_dot(const std::filesystem::path& path, const xgrad::Graph& graph,
               const std::string& title) {
    std::printf("%s\n%s\n", title.c_str(), graph.to_string().c_str());
    const std::string dot = graph.to_dot(title);
    xgrad::io::write_file_atomically(path, [&dot](std::ostream& out) { out << dot; });
}

}  // namespace

int main(int argc, char** argv) {
    xgrad::examples::Flags flags("Writes Graphviz DOT files of captured xgrad graphs.");
    flags.add("out", "out/graphs", "Directory for the DOT files.");
    flags.parse(argc, argv);
    const std::filesystem::path out = flags.get("out");

    try {
        std::filesystem::create_directories(out);

        // The seed network's training loss on its two examples, (1, 0) -> 1
        // and (0, 1) -> 0.
        SeedNetwork network;
        const Tensor x1(xt::xarray<double>{1.0, 0.0});
        const Tensor x2(xt::xarray<double>{0.0, 1.0});
        const Tensor target(xt::xarray<double>{1.0, 0.0});
        const xgrad::Graph seed = xgrad::capture(
            [&network](const std::vector<Tensor>& in) {
                const Tensor y = xgrad::tanh(network.w1 * in[0] + network.w2 * in[1] + network.b);
                return std::vector<Tensor>{xgrad::mse_loss(y, in[2])};
            },
            {x1, x2, target}, &network);
        write_dot(out / "seed_network.dot", seed,
                  "y = tanh(w1 x1 + w2 x2 + b), mean squared error");

        // The main job's network, as examples/fashion_mnist builds it.
        xgrad::Generator generator(1);
        nn::Sequential mlp{
            std::make_shared<nn::Linear>(784, 256, generator), std::make_shared<nn::ReLU>(),
            std::make_shared<nn::Linear>(256, 128, generator), std::make_shared<nn::ReLU>(),
            std::make_shared<nn::Linear>(128, 10, generator)};
        mlp.eval();
        const xgrad::Graph forward = xgrad::capture(mlp, xgrad::zeros({kBatch, 784}));
        write_dot(out / "mlp_forward.dot", forward, "784-256-128-10 MLP, forward pass");

        std::printf(
            "Wrote seed_network.dot and mlp_forward.dot to %s; render them with "
            "dot -Tsvg FILE.dot -o FILE.svg\n",
            out.c_str());
        return 0;
    } catch (const std::exception& error) {
        std::fflush(stdout);  // keep the log in order when both go to one file
        std::fprintf(stderr, "draw_graphs: %s\n", error.what());
        return 1;
    }
}
