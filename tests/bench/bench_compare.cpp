// xgrad against libtorch and against the hardware limit, in one run. Built
// only when libtorch-dev is installed (scripts/setup --bench installs it).
//
//   build/tests/bench/bench_compare [rounds] [--malloc default|tuned|both]
//
// Workloads (bench names as in the JSON lines):
//   tape             forward + backward of a 10,000-op chain on one-element
//                    tensors, microseconds per op, against libtorch
//   small_mlp_step   one SGD step of a 2-8-1 tanh MLP with MSE, batch 4,
//                    against libtorch
//   fmnist_mlp_step  one Adam step of the 784-256-128-10 ReLU MLP, batch 128,
//                    against libtorch
//   fmnist_train     one epoch of that model over the 60,000 training images,
//                    against libtorch
//   gemm             1024 x 1024 x 1024 float32 product through xgrad::matmul,
//                    against a raw cblas_sgemm into a preallocated output
//                    (and libtorch's torch::mm, listed for reference)
//   infer_f32        the MLP's forward at batch 256, xgrad's replayed graph
//                    against libtorch's forward under NoGradGuard
//   infer_int8       the same forward after convert_int8, against xgrad's
//                    float32 graph
//   infer_sparse     the same forward with 90% of each weight pruned and the
//                    layers made sparse, against xgrad's dense graph
//   conv_step        forward + backward of each conv layer of examples/fashion_cnn
//                    (3x3, padding 1, no bias; 1->32 channels at 28x28,
//                    32->64 at 14x14, 64->64 at 7x7), batch 128, float32,
//                    summed over the three layers, against libtorch's
//                    torch::conv2d
//   conv_forward     the forward of the largest of those layers (32->64 at
//                    14x14), xgrad's im2col plus OpenBLAS and libtorch against
//                    oneDNN's convolution primitive on NCHW data (its layout
//                    reorders included), all on 2 threads
//   peak_memory      peak resident memory of one training epoch above the
//                    process's memory before it, each library in its own
//                    process, against libtorch
//
// The program is a driver. It runs the timed workloads in one child process
// per malloc setting: "default" (glibc's defaults) and "tuned" (glibc
// tunables that keep freed memory in the heap, so that buffers of a few
// hundred KB allocated every step do not come back as fresh pages that
// fault). The memory workloads run in one child per library and setting.
// Inside a child, each round runs the two sides of every comparison one
// after the other, so both see the same machine phase. The table gives the
// medians and the median of the per-round ratios xgrad / peer. For times,
// below 1 means xgrad is faster. For gemm's GFLOP/s, the ratio is the
// fraction of cblas_sgemm's throughput.
//
// libtorch runs its elementwise work on OpenMP threads, which by default
// spin while idle and take the cores from OpenBLAS, so the children run with
// OMP_WAIT_POLICY=PASSIVE; both libraries use 2 threads.

#include <cblas.h>
#include <oneapi/dnnl/dnnl.hpp>
#include <spawn.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "xgrad_workloads.hpp"

extern char** environ;

namespace {

constexpr int kChainOps = 10000;
constexpr int kFmnistStepsPerRound = 50;
constexpr int kSmallStepsPerRound = 2000;
constexpr int kGemmSize = 1024;
constexpr int kGemmCallsPerRound = 5;
constexpr std::size_t kInferenceBatch = 256;
constexpr int kInferenceCallsPerRound = 40;
constexpr double kPrunedFraction = 0.9;

// glibc tunables of the "tuned" setting: no mmap for blocks below 64 MiB and
// no trimming of the heap top below 128 MiB.
constexpr const char* kTunedMalloc =
    "GLIBC_TUNABLES=glibc.malloc.mmap_threshold=67108864:glibc.malloc.trim_threshold=134217728";

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
}

// --- tape chain ---------------------------------------------------------------

// Results of one chain run: time per op and the values that show both
// libraries computed the same thing.
struct ChainRun {
    double us_per_op;
    double out;
    double dx;
    double dw;
};

ChainRun xgrad_chain() {
    xgrad::Tensor x(xt::xarray<float>{0.5f});
    xgrad::Tensor w(xt::xarray<float>{-0.001f});
    x.requires_grad_(true);
    w.requires_grad_(true);
    const auto start = std::chrono::steady_clock::now();
    xgrad::Tensor y = x;
    xgrad::Tensor t;
    xgrad::Tensor last;
    for (int i = 0; i < kChainOps; ++i) {
        if (i % 3 == 0) {
            last = t = xgrad::tanh(y);
        } else if (i % 3 == 1) {
            last = t = t * w;
        } else {
            last = y = y + t;
        }
    }
    last.backward();
    return {bench::seconds_since(start) * 1e6 / kChainOps, last.item(), x.grad().item(),
            w.grad().item()};
}

ChainRun torch_chain() {
    torch::Tensor x = torch::tensor({0.5f}, torch::requires_grad());
    torch::Tensor w = torch::tensor({-0.001f}, torch::requires_grad());
    const auto start = std::chrono::steady_clock::now();
    torch::Tensor y = x;
    torch::Tensor t;
    torch::Tensor last;
    for (int i = 0; i < kChainOps; ++i) {
        if (i % 3 == 0) {
            last = t = torch::tanh(y);
        } else if (i % 3 == 1) {
            last = t = t * w;
        } else {
            last = y = y + t;
        }
    }
    last.backward();
    return {bench::seconds_since(start) * 1e6 / kChainOps, last.item<float>(),
            x.grad().item<float>(), w.grad().item<float>()};
}

// --- training steps ------------------------------------------------------------------

torch::nn::Sequential make_torch_mlp() {
    return torch::nn::Sequential(torch::nn::Linear(784, 256), torch::nn::ReLU(),
                                 torch::nn::Linear(256, 128), torch::nn::ReLU(),
                                 torch::nn::Linear(128, 10));
}

class TorchSmallStep {
public:
    TorchSmallStep()
        : model_(torch::nn::Linear(2, 8), torch::nn::Tanh(), torch::nn::Linear(8, 1)),
          optimizer_(model_->parameters(), torch::optim::SGDOptions(0.1)),
          inputs_(torch::rand({4, 2}) * 2 - 1),
          targets_(torch::rand({4, 1})) {}

    double run(int steps) {
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < steps; ++i) {
            optimizer_.zero_grad();
            torch::Tensor loss = torch::mse_loss(model_->forward(inputs_), targets_);
            loss.backward();
            optimizer_.step();
        }
        return bench::seconds_since(start);
    }

private:
    torch::nn::Sequential model_;
    torch::optim::SGD optimizer_;
    torch::Tensor inputs_;
    torch::Tensor targets_;
};

class TorchMlpStep {
public:
    TorchMlpStep()
        : model_(make_torch_mlp()),
          optimizer_(model_->parameters(), torch::optim::AdamOptions(1e-3)),
          inputs_(torch::rand({128, 784})),
          labels_(torch::randint(10, {128}, torch::kLong)) {}

    double run(int steps) {
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < steps; ++i) {
            optimizer_.zero_grad();
            torch::Tensor loss = torch::nn::functional::cross_entropy(model_->forward(inputs_), labels_);
            loss.backward();
            optimizer_.step();
        }
        return bench::seconds_since(start);
    }

private:
    torch::nn::Sequential model_;
    torch::optim::Adam optimizer_;
    torch::Tensor inputs_;
    torch::Tensor labels_;
};

// One epoch over `train`, which libtorch reads in place (from_blob, no copy),
// so that both libraries start from the same memory.
class TorchEpoch {
public:
    explicit TorchEpoch(const xgrad::data::TensorDataset& train)
        : model_(make_torch_mlp()), optimizer_(model_->parameters(), torch::optim::AdamOptions(1e-3)) {
        const auto& images = train.inputs().values<float>();
        const auto& labels = train.targets().values<std::int64_t>();
        const auto n = static_cast<std::int64_t>(train.size());
        inputs_ = torch::from_blob(const_cast<float*>(images.data()), {n, 784});
        labels_ = torch::from_blob(const_cast<std::int64_t*>(labels.data()), {n}, torch::kLong);
    }

    double run() {
        const auto start = std::chrono::steady_clock::now();
        const std::int64_t n = inputs_.size(0);
        const torch::Tensor order = torch::randperm(n);
        for (std::int64_t first = 0; first < n; first += 128) {
            const torch::Tensor positions = order.slice(0, first, std::min(first + 128, n));
            optimizer_.zero_grad();
            torch::Tensor loss = torch::nn::functional::cross_entropy(
                model_->forward(inputs_.index_select(0, positions)), labels_.index_select(0, positions));
            loss.backward();
            optimizer_.step();
        }
        return bench::seconds_since(start);
    }

private:
    torch::nn::Sequential model_;
    torch::optim::Adam optimizer_;
    torch::Tensor inputs_;
    torch::Tensor labels_;
};

// --- gemm -------------------------------------------------------------------------------

// Throughput of three ways to compute the same 1024^3 float32 product.
class Gemm {
public:
    Gemm() {
        xgrad::Generator generator(5);
        const xgrad::Shape shape{kGemmSize, kGemmSize};
        a_ = xgrad::uniform(shape, -1.0, 1.0, generator);
        b_ = xgrad::uniform(shape, -1.0, 1.0, generator);
        c_.resize(static_cast<std::size_t>(kGemmSize) * kGemmSize);
        torch_a_ = torch::rand({kGemmSize, kGemmSize});
        torch_b_ = torch::rand({kGemmSize, kGemmSize});
    }

    double xgrad_gflops() {
        xgrad::NoGradGuard no_grad;
        return gflops([&] { xgrad::Tensor c = xgrad::matmul(a_, b_); });
    }

    double cblas_gflops() {
        const float* a = a_.values<float>().data();
        const float* b = b_.values<float>().data();
        return gflops([&] {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, kGemmSize, kGemmSize, kGemmSize,
                        1.0f, a, kGemmSize, b, kGemmSize, 0.0f, c_.data(), kGemmSize);
        });
    }

    double torch_gflops() {
        torch::NoGradGuard no_grad;
        return gflops([&] { torch::Tensor c = torch::mm(torch_a_, torch_b_); });
    }

    /// Largest difference between xgrad's product and the raw call's.
    float check() {
        cblas_gflops();
        xgrad::NoGradGuard no_grad;
        const xgrad::Tensor product = xgrad::matmul(a_, b_);
        const float* values = product.values<float>().data();
        float largest = 0.0f;
        for (std::size_t i = 0; i < c_.size(); ++i) {
            largest = std::max(largest, std::abs(values[i] - c_[i]));
        }
        return largest;
    }

private:
    template <typename Call>
    static double gflops(Call call) {
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < kGemmCallsPerRound; ++i) {
            call();
        }
        const double flops = 2.0 * kGemmSize * kGemmSize * kGemmSize * kGemmCallsPerRound;
        return flops / bench::seconds_since(start) / 1e9;
    }

    xgrad::Tensor a_;
    xgrad::Tensor b_;
    std::vector<float> c_;
    torch::Tensor torch_a_;
    torch::Tensor torch_b_;
};

// --- inference ---------------------------------------------------------------------------

// The MLP's forward at batch 256 in four forms: libtorch eager, and xgrad's
// captured graph as float32, int8 and 90%-sparse float32.
class Inference {
public:
    explicit Inference(const xgrad::data::TensorDataset& train)
        : generator_(3),
          model_(bench::make_xgrad_mlp(generator_)),
          torch_model_(make_torch_mlp()),
          inputs_(train.head(kInferenceBatch).inputs()),
          dense_(capture(*model_, inputs_)),
          int8_(int8_graph(train)),
          sparse_(sparse_graph()) {
        const auto& pixels = inputs_.values<float>();
        torch_inputs_ = torch::from_blob(const_cast<float*>(pixels.data()),
                                         {static_cast<std::int64_t>(kInferenceBatch), 784});
        torch_model_->eval();
    }

    double torch_ms() {
        torch::NoGradGuard no_grad;
        return ms_per_call([&] { torch::Tensor logits = torch_model_->forward(torch_inputs_); });
    }

    double dense_ms() { return ms_per_call([&] { dense_.forward({inputs_}); }); }
    double int8_ms() { return ms_per_call([&] { int8_.forward({inputs_}); }); }
    double sparse_ms() { return ms_per_call([&] { sparse_.forward({inputs_}); }); }

private:
    static xgrad::Graph capture(xgrad::nn::Module& model, const xgrad::Tensor& inputs) {
        xgrad::NoGradGuard no_grad;
        model.eval();
        return xgrad::capture(model, inputs);
    }

    // Calibrated on 8 batches of training images, as the main job does with more.
    xgrad::Graph int8_graph(const xgrad::data::TensorDataset& train) {
        namespace tf = xgrad::transforms;
        tf::Calibration calibration = tf::prepare_quantization(dense_);
        for (std::size_t batch = 0; batch < 8; ++batch) {
            std::vector<std::int64_t> positions(kInferenceBatch);
            std::iota(positions.begin(), positions.end(), static_cast<std::int64_t>(batch * kInferenceBatch));
            calibration.observe({train.subset(positions).inputs()});
        }
        return tf::convert_int8(dense_, calibration.activation_params());
    }

    // Prunes a second model's weights by magnitude, so that the dense graph
    // keeps its own weights, and makes its layers sparse.
    xgrad::Graph sparse_graph() {
        namespace tf = xgrad::transforms;
        pruned_model_ = bench::make_xgrad_mlp(generator_);
        const xgrad::Graph pruned = tf::bake_masks(tf::prune(
            capture(*pruned_model_, inputs_), {.method = tf::PruneMethod::magnitude, .sparsity = kPrunedFraction}));
        return xgrad::eliminate_dead_code(xgrad::sparsify(pruned, kPrunedFraction - 0.1));
    }

    template <typename Call>
    static double ms_per_call(Call call) {
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < kInferenceCallsPerRound; ++i) {
            call();
        }
        return bench::seconds_since(start) * 1e3 / kInferenceCallsPerRound;
    }

    xgrad::Generator generator_;
    std::shared_ptr<xgrad::nn::Sequential> model_;
    std::shared_ptr<xgrad::nn::Sequential> pruned_model_;
    torch::nn::Sequential torch_model_;
    xgrad::Tensor inputs_;
    torch::Tensor torch_inputs_;
    xgrad::Graph dense_;
    xgrad::Graph int8_;
    xgrad::Graph sparse_;
};

// --- convolution ----------------------------------------------------------------------

// The convolution layers of examples/fashion_cnn: 3x3 kernels, padding 1, no
// bias, at batch 128 on the image sizes the example feeds them.
struct ConvLayer {
    std::int64_t in_channels;
    std::int64_t out_channels;
    std::int64_t side;
};
constexpr ConvLayer kConvLayers[] = {{1, 32, 28}, {32, 64, 14}, {64, 64, 7}};
constexpr std::size_t kLargestConv = 1;  // the largest number of multiply-adds: 64 x 288 x (128 * 196)
constexpr std::int64_t kConvBatch = 128;
constexpr int kConvStepsPerRound = 5;
constexpr int kConvForwardsPerRound = 10;

torch::Tensor torch_copy(const xgrad::Tensor& tensor) {
    const auto& values = tensor.values<float>();
    const std::vector<std::int64_t> shape(tensor.shape().begin(), tensor.shape().end());
    return torch::from_blob(const_cast<float*>(values.data()), shape).clone();
}

template <typename Call>
double ms_per_repeat(int repeats, Call call) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < repeats; ++i) {
        call();
    }
    return bench::seconds_since(start) * 1e3 / repeats;
}

// Forward and backward of each conv layer on its own fixed input and output
// gradient, the same values in both libraries. The first layer's input (the
// images) needs no gradient, as in the example.
class ConvStack {
public:
    ConvStack() {
        xgrad::Generator generator(7);
        for (const ConvLayer& layer : kConvLayers) {
            const auto side = static_cast<std::size_t>(layer.side);
            const auto in = static_cast<std::size_t>(layer.in_channels);
            const auto out = static_cast<std::size_t>(layer.out_channels);
            inputs_.push_back(xgrad::uniform({kConvBatch, in, side, side}, -1.0, 1.0, generator));
            weights_.push_back(xgrad::uniform({out, in, 3, 3}, -0.1, 0.1, generator));
            grads_.push_back(xgrad::uniform({kConvBatch, out, side, side}, -1.0, 1.0, generator));
            torch_inputs_.push_back(torch_copy(inputs_.back()));
            torch_weights_.push_back(torch_copy(weights_.back()));
            torch_grads_.push_back(torch_copy(grads_.back()));
            const bool input_grad = inputs_.size() > 1;
            inputs_.back().requires_grad_(input_grad);
            torch_inputs_.back().requires_grad_(input_grad);
            weights_.back().requires_grad_(true);
            torch_weights_.back().requires_grad_(true);
        }
    }

    double xgrad_ms() {
        return ms_per_repeat(kConvStepsPerRound, [this] {
            for (std::size_t i = 0; i < inputs_.size(); ++i) {
                xgrad_layer(i);
            }
        });
    }

    double torch_ms() {
        return ms_per_repeat(kConvStepsPerRound, [this] {
            for (std::size_t i = 0; i < torch_inputs_.size(); ++i) {
                torch_layer(i);
            }
        });
    }

    /// Largest difference between the libraries' weight gradients of layer
    /// `i`, relative to the largest gradient.
    double check(std::size_t i) {
        xgrad_layer(i);
        torch_layer(i);
        const xgrad::Tensor grad = weights_[i].grad();
        const float* xgrad_grad = grad.values<float>().data();
        const torch::Tensor torch_grad = torch_weights_[i].grad().contiguous();
        const float* peer = torch_grad.data_ptr<float>();
        double largest = 0.0;
        double difference = 0.0;
        for (std::int64_t j = 0; j < torch_grad.numel(); ++j) {
            largest = std::max(largest, std::abs(double(peer[j])));
            difference = std::max(difference, std::abs(double(xgrad_grad[j]) - peer[j]));
        }
        return difference / largest;
    }

private:
    void xgrad_layer(std::size_t i) {
        inputs_[i].zero_grad();
        weights_[i].zero_grad();
        const xgrad::Tensor y = xgrad::conv2d(inputs_[i], weights_[i], {}, {.padding = {1, 1}});
        y.backward(grads_[i]);
    }

    void torch_layer(std::size_t i) {
        torch_inputs_[i].mutable_grad() = torch::Tensor();
        torch_weights_[i].mutable_grad() = torch::Tensor();
        const torch::Tensor y = torch::conv2d(torch_inputs_[i], torch_weights_[i], {}, {1, 1}, {1, 1});
        y.backward(torch_grads_[i]);
    }

    std::vector<xgrad::Tensor> inputs_;
    std::vector<xgrad::Tensor> weights_;
    std::vector<xgrad::Tensor> grads_;
    std::vector<torch::Tensor> torch_inputs_;
    std::vector<torch::Tensor> torch_weights_;
    std::vector<torch::Tensor> torch_grads_;
};

// The largest conv layer's forward three ways: xgrad's im2col plus OpenBLAS,
// oneDNN's convolution primitive, and libtorch's torch::conv2d. oneDNN reads
// and writes NCHW float32 like xgrad but computes in blocked layouts of its
// own choice. The reorders into and out of them (input, weight and output)
// run in every call, because in training the weight changes at every step.
class ConvForward {
public:
    ConvForward() : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {
        using dnnl::memory;
        const ConvLayer& layer = kConvLayers[kLargestConv];
        const auto side = static_cast<std::size_t>(layer.side);
        xgrad::Generator generator(8);
        input_ = xgrad::uniform({kConvBatch, static_cast<std::size_t>(layer.in_channels), side, side},
                                -1.0, 1.0, generator);
        weight_ = xgrad::uniform({static_cast<std::size_t>(layer.out_channels),
                                  static_cast<std::size_t>(layer.in_channels), 3, 3},
                                 -0.1, 0.1, generator);
        torch_input_ = torch_copy(input_);
        torch_weight_ = torch_copy(weight_);
        output_.resize(static_cast<std::size_t>(kConvBatch * layer.out_channels * layer.side * layer.side));

        const memory::dims source{kConvBatch, layer.in_channels, layer.side, layer.side};
        const memory::dims weights{layer.out_channels, layer.in_channels, 3, 3};
        const memory::dims destination{kConvBatch, layer.out_channels, layer.side, layer.side};
        const memory::dims strides{1, 1};
        const memory::dims padding{1, 1};
        const auto f32 = memory::data_type::f32;
        const auto any = memory::format_tag::any;
        const dnnl::convolution_forward::primitive_desc description(
            dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                            dnnl::algorithm::convolution_direct, {source, f32, any},
                                            {weights, f32, any}, {destination, f32, any}, strides,
                                            padding, padding),
            engine_);
        implementation_ = description.impl_info_str();
        convolution_ = dnnl::convolution_forward(description);

        // oneDNN takes non-const handles but only reads the source and weights.
        user_source_ = memory({source, f32, memory::format_tag::nchw}, engine_,
                              const_cast<float*>(input_.values<float>().data()));
        user_weights_ = memory({weights, f32, memory::format_tag::oihw}, engine_,
                               const_cast<float*>(weight_.values<float>().data()));
        user_destination_ = memory({destination, f32, memory::format_tag::nchw}, engine_, output_.data());
        source_ = memory(description.src_desc(), engine_);
        weights_ = memory(description.weights_desc(), engine_);
        destination_ = memory(description.dst_desc(), engine_);
        to_source_ = dnnl::reorder(user_source_, source_);
        to_weights_ = dnnl::reorder(user_weights_, weights_);
        from_destination_ = dnnl::reorder(destination_, user_destination_);
    }

    double xgrad_ms() {
        xgrad::NoGradGuard no_grad;
        return ms_per_repeat(kConvForwardsPerRound, [this] {
            const xgrad::Tensor y = xgrad::conv2d(input_, weight_, {}, {.padding = {1, 1}});
        });
    }

    double onednn_ms() {
        return ms_per_repeat(kConvForwardsPerRound, [this] { onednn_forward(); });
    }

    double torch_ms() {
        torch::NoGradGuard no_grad;
        return ms_per_repeat(kConvForwardsPerRound, [this] {
            const torch::Tensor y = torch::conv2d(torch_input_, torch_weight_, {}, {1, 1}, {1, 1});
        });
    }

    /// The implementation oneDNN chose, such as "brgconv:avx512_core".
    const std::string& implementation() const { return implementation_; }

    /// Largest difference between oneDNN's output and xgrad's.
    float check() {
        onednn_forward();
        xgrad::NoGradGuard no_grad;
        const xgrad::Tensor y = xgrad::conv2d(input_, weight_, {}, {.padding = {1, 1}});
        const float* values = y.values<float>().data();
        float largest = 0.0f;
        for (std::size_t i = 0; i < output_.size(); ++i) {
            largest = std::max(largest, std::abs(values[i] - output_[i]));
        }
        return largest;
    }

private:
    void onednn_forward() {
        to_source_.execute(stream_, user_source_, source_);
        to_weights_.execute(stream_, user_weights_, weights_);
        convolution_.execute(stream_, {{DNNL_ARG_SRC, source_},
                                       {DNNL_ARG_WEIGHTS, weights_},
                                       {DNNL_ARG_DST, destination_}});
        from_destination_.execute(stream_, destination_, user_destination_);
        stream_.wait();
    }

    xgrad::Tensor input_;
    xgrad::Tensor weight_;
    torch::Tensor torch_input_;
    torch::Tensor torch_weight_;
    std::vector<float> output_;
    dnnl::engine engine_;
    dnnl::stream stream_;
    std::string implementation_;
    dnnl::convolution_forward convolution_;
    dnnl::memory user_source_;
    dnnl::memory user_weights_;
    dnnl::memory user_destination_;
    dnnl::memory source_;
    dnnl::memory weights_;
    dnnl::memory destination_;
    dnnl::reorder to_source_;
    dnnl::reorder to_weights_;
    dnnl::reorder from_destination_;
};

// --- reporting ---------------------------------------------------------------------------

struct Comparison {
    std::string bench;
    std::string unit;
    std::string json_key;
    std::string impl;  // the JSON "impl" of the first side
    std::string peer;  // and of the second
    std::vector<double> xgrad;
    std::vector<double> peer_values;
};

void report(const std::vector<Comparison>& comparisons, const std::string& malloc_setting) {
    std::printf("\nmalloc %s\n%-16s %-12s %12s %-12s %12s %10s  %s\n", malloc_setting.c_str(), "workload",
                "impl", "median", "peer", "median", "ratio", "unit");
    for (const Comparison& c : comparisons) {
        std::vector<double> ratios;
        for (std::size_t i = 0; i < c.xgrad.size(); ++i) {
            ratios.push_back(c.xgrad[i] / c.peer_values[i]);
        }
        std::printf("%-16s %-12s %12.4f %-12s %12.4f %10.3f  %s (median of %zu rounds)\n", c.bench.c_str(),
                    c.impl.c_str(), median(c.xgrad), c.peer.c_str(), median(c.peer_values), median(ratios),
                    c.unit.c_str(), ratios.size());
    }
    std::printf("\n");
    std::set<std::pair<std::string, std::string>> printed;  // cblas is the peer of two gemm rows
    for (const Comparison& c : comparisons) {
        for (const auto& [impl, values] : {std::pair{c.impl, c.xgrad}, std::pair{c.peer, c.peer_values}}) {
            if (!printed.insert({c.bench, impl}).second) {
                continue;
            }
            std::printf("{\"bench\": \"%s\", \"impl\": \"%s\", \"malloc\": \"%s\", \"%s\": %.4f}\n",
                        c.bench.c_str(), impl.c_str(), malloc_setting.c_str(), c.json_key.c_str(),
                        median(values));
        }
    }
    std::fflush(stdout);
}

// --- the child processes -------------------------------------------------------------

int run_timings(int rounds, const std::string& malloc_setting) {
    torch::set_num_threads(2);
    torch::manual_seed(1);

    Comparison tape{"tape", "us per op", "us_per_op_median", "xgrad", "libtorch", {}, {}};
    Comparison small{"small_mlp_step", "us per step", "us_per_step_median", "xgrad", "libtorch", {}, {}};
    Comparison step{"fmnist_mlp_step", "ms per step", "ms_per_step_median", "xgrad", "libtorch", {}, {}};
    Comparison epoch{"fmnist_train", "s per epoch", "s_per_epoch_median", "xgrad", "libtorch", {}, {}};
    Comparison gemm{"gemm", "GFLOP/s", "gflops_median", "xgrad", "cblas", {}, {}};
    Comparison gemm_torch{"gemm", "GFLOP/s", "gflops_median", "libtorch", "cblas", {}, {}};
    Comparison infer{"infer_f32", "ms per batch", "ms_per_batch_median", "xgrad", "libtorch", {}, {}};
    Comparison int8{"infer_int8", "ms per batch", "ms_per_batch_median", "xgrad_int8", "xgrad_f32", {}, {}};
    Comparison sparse{"infer_sparse", "ms per batch", "ms_per_batch_median", "xgrad_sparse", "xgrad_dense",
                      {}, {}};
    Comparison conv{"conv_step", "ms per step", "ms_per_step_median", "xgrad", "libtorch", {}, {}};
    Comparison conv_forward{"conv_forward", "ms per call", "ms_per_call_median", "xgrad", "onednn", {}, {}};
    Comparison conv_forward_torch{"conv_forward", "ms per call", "ms_per_call_median", "libtorch", "onednn",
                                  {}, {}};

    const ChainRun xgrad_check = xgrad_chain();  // also the warm-ups
    const ChainRun torch_check = torch_chain();
    std::printf("malloc %s: tape chain values: xgrad out = %.8g, dx = %.8g, dw = %.8g\n",
                malloc_setting.c_str(), xgrad_check.out, xgrad_check.dx, xgrad_check.dw);
    std::printf("                              libtorch out = %.8g, dx = %.8g, dw = %.8g\n",
                torch_check.out, torch_check.dx, torch_check.dw);

    bench::XgradSmallStep xgrad_small;
    TorchSmallStep torch_small;
    bench::XgradMlpStep xgrad_step;
    TorchMlpStep torch_step;
    Gemm products;
    std::printf("gemm: largest difference between xgrad::matmul and cblas_sgemm: %g\n", products.check());
    const auto train = xgrad::data::load_fashion_mnist(xgrad::data::fashion_mnist_dir(),
                                                       xgrad::data::Split::train);
    Inference inference(train);
    xgrad_small.run(200);
    torch_small.run(200);
    xgrad_step.run(20);
    torch_step.run(20);
    inference.dense_ms();
    inference.int8_ms();
    inference.sparse_ms();
    inference.torch_ms();
    ConvStack convs;
    ConvForward conv_forwards;
    for (std::size_t i = 0; i < std::size(kConvLayers); ++i) {
        std::printf("conv_step: layer %zu: largest difference of the weight gradients, xgrad against "
                    "libtorch, relative to the largest: %g\n",
                    i, convs.check(i));
    }
    std::printf("conv_forward: oneDNN chose %s; largest difference from xgrad's output: %g\n",
                conv_forwards.implementation().c_str(), conv_forwards.check());
    convs.xgrad_ms();
    convs.torch_ms();
    conv_forwards.xgrad_ms();
    conv_forwards.onednn_ms();
    conv_forwards.torch_ms();

    for (int round = 0; round < rounds; ++round) {
        tape.xgrad.push_back(xgrad_chain().us_per_op);
        tape.peer_values.push_back(torch_chain().us_per_op);
        small.xgrad.push_back(xgrad_small.run(kSmallStepsPerRound) * 1e6 / kSmallStepsPerRound);
        small.peer_values.push_back(torch_small.run(kSmallStepsPerRound) * 1e6 / kSmallStepsPerRound);
        step.xgrad.push_back(xgrad_step.run(kFmnistStepsPerRound) * 1e3 / kFmnistStepsPerRound);
        step.peer_values.push_back(torch_step.run(kFmnistStepsPerRound) * 1e3 / kFmnistStepsPerRound);
        const double cblas = products.cblas_gflops();
        gemm.xgrad.push_back(products.xgrad_gflops());
        gemm.peer_values.push_back(cblas);
        gemm_torch.xgrad.push_back(products.torch_gflops());
        gemm_torch.peer_values.push_back(cblas);
        const double dense = inference.dense_ms();
        infer.xgrad.push_back(dense);
        infer.peer_values.push_back(inference.torch_ms());
        int8.xgrad.push_back(inference.int8_ms());
        int8.peer_values.push_back(dense);
        sparse.xgrad.push_back(inference.sparse_ms());
        sparse.peer_values.push_back(dense);
        conv.xgrad.push_back(convs.xgrad_ms());
        conv.peer_values.push_back(convs.torch_ms());
        const double onednn = conv_forwards.onednn_ms();
        conv_forward.xgrad.push_back(conv_forwards.xgrad_ms());
        conv_forward.peer_values.push_back(onednn);
        conv_forward_torch.xgrad.push_back(conv_forwards.torch_ms());
        conv_forward_torch.peer_values.push_back(onednn);
    }

    bench::XgradEpoch xgrad_epoch(train);
    TorchEpoch torch_epoch(train);
    for (int round = 0; round < std::max(3, rounds / 2); ++round) {
        epoch.xgrad.push_back(xgrad_epoch.run());
        epoch.peer_values.push_back(torch_epoch.run());
    }

    report({tape, small, step, epoch, gemm, gemm_torch, infer, int8, sparse, conv, conv_forward,
            conv_forward_torch},
           malloc_setting);
    return 0;
}

// A field of /proc/self/status, in KiB.
long status_kib(const char* field) {
    std::ifstream status("/proc/self/status");
    std::string line;
    const std::size_t length = std::strlen(field);
    while (std::getline(status, line)) {
        if (line.compare(0, length, field) == 0 && line[length] == ':') {
            return std::atol(line.c_str() + length + 1);
        }
    }
    return -1;
}

// One training epoch in `library`. Prints the resident memory before the
// epoch and the peak during it, in KiB. The peak is reset first (writing 5
// to /proc/self/clear_refs), so that loading the data set does not count.
int run_memory(const std::string& library) {
    torch::set_num_threads(2);
    const auto train = xgrad::data::load_fashion_mnist(xgrad::data::fashion_mnist_dir(),
                                                       xgrad::data::Split::train);
    std::ofstream("/proc/self/clear_refs") << "5";
    const long before = status_kib("VmRSS");
    if (library == "xgrad") {
        bench::XgradEpoch(train).run();
    } else {
        TorchEpoch(train).run();
    }
    std::printf("%ld %ld\n", before, status_kib("VmHWM"));
    return 0;
}

// --- the driver ---------------------------------------------------------------------------

// Runs this program again with `arguments` and the extra environment
// variables, and returns its standard output (or passes it through when
// `capture` is false). Exits on failure.
std::string run_child(const std::vector<std::string>& arguments, const std::vector<std::string>& environment,
                      bool capture) {
    // The inherited environment, minus the variables that `environment` sets.
    std::vector<std::string> env(environment);
    for (char** variable = environ; *variable != nullptr; ++variable) {
        const std::string definition(*variable);
        const std::string name = definition.substr(0, definition.find('=') + 1);
        const bool overridden = std::any_of(environment.begin(), environment.end(), [&](const std::string& set) {
            return set.compare(0, name.size(), name) == 0;
        });
        if (!overridden) {
            env.push_back(definition);
        }
    }
    std::vector<std::string> args{"/proc/self/exe"};
    args.insert(args.end(), arguments.begin(), arguments.end());
    auto pointers = [](std::vector<std::string>& strings) {
        std::vector<char*> result;
        for (std::string& s : strings) {
            result.push_back(s.data());
        }
        result.push_back(nullptr);
        return result;
    };
    std::vector<char*> argv = pointers(args);
    std::vector<char*> envp = pointers(env);

    int pipe_fds[2] = {-1, -1};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (capture) {
        if (::pipe(pipe_fds) != 0) {
            std::perror("bench_compare: pipe");
            std::exit(1);
        }
        posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
        posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
    }
    std::fflush(stdout);
    pid_t pid = 0;
    const int spawned = posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) {
        std::fprintf(stderr, "bench_compare: cannot start a child: %s\n", std::strerror(spawned));
        std::exit(1);
    }
    std::string output;
    if (capture) {
        ::close(pipe_fds[1]);
        char buffer[256];
        ssize_t count = 0;
        while ((count = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0) {
            output.append(buffer, static_cast<std::size_t>(count));
        }
        ::close(pipe_fds[0]);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::fprintf(stderr, "bench_compare: child %s failed\n", arguments.front().c_str());
        std::exit(1);
    }
    return output;
}

std::vector<std::string> child_environment(const std::string& malloc_setting) {
    std::vector<std::string> environment{"OMP_WAIT_POLICY=PASSIVE"};
    if (malloc_setting == "tuned") {
        environment.emplace_back(kTunedMalloc);
    }
    return environment;
}

void report_memory(const std::vector<std::string>& settings) {
    std::printf("\npeak memory of one fmnist_train epoch, MiB (each in its own process)\n");
    std::printf("%-8s %-9s %10s %10s %10s\n", "malloc", "impl", "before", "peak", "growth");
    std::vector<std::string> json;
    for (const std::string& setting : settings) {
        double growth[2] = {0, 0};
        const char* libraries[2] = {"xgrad", "libtorch"};
        for (int i = 0; i < 2; ++i) {
            const std::string output =
                run_child({"--memory", libraries[i]}, child_environment(setting), /*capture=*/true);
            long before = 0;
            long peak = 0;
            if (std::sscanf(output.c_str(), "%ld %ld", &before, &peak) != 2) {
                std::fprintf(stderr, "bench_compare: unexpected memory child output '%s'\n", output.c_str());
                std::exit(1);
            }
            growth[i] = static_cast<double>(peak - before) / 1024.0;
            std::printf("%-8s %-9s %10.1f %10.1f %10.1f\n", setting.c_str(), libraries[i], before / 1024.0,
                        peak / 1024.0, growth[i]);
            json.push_back("{\"bench\": \"peak_memory\", \"impl\": \"" + std::string(libraries[i]) +
                           "\", \"malloc\": \"" + setting + "\", \"peak_growth_mib\": " +
                           std::to_string(growth[i]) + ", \"peak_rss_mib\": " +
                           std::to_string(static_cast<double>(peak) / 1024.0) + "}");
        }
        std::printf("%-8s growth ratio xgrad / libtorch: %.3f\n", setting.c_str(), growth[0] / growth[1]);
    }
    std::printf("\n");
    for (const std::string& line : json) {
        std::printf("%s\n", line.c_str());
    }
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<std::string> arguments(argv + 1, argv + argc);
    if (arguments.size() == 3 && arguments[0] == "--timings") {
        return run_timings(std::atoi(arguments[1].c_str()), arguments[2]);
    }
    if (arguments.size() == 2 && arguments[0] == "--memory") {
        return run_memory(arguments[1]);
    }

    int rounds = 7;
    std::string malloc_choice = "both";
    for (std::size_t i = 0; i < arguments.size(); ++i) {
        if (arguments[i] == "--malloc" && i + 1 < arguments.size()) {
            malloc_choice = arguments[++i];
        } else if (std::atoi(arguments[i].c_str()) > 0) {
            rounds = std::atoi(arguments[i].c_str());
        } else {
            std::fprintf(stderr, "usage: bench_compare [rounds] [--malloc default|tuned|both]\n");
            return 2;
        }
    }
    if (malloc_choice != "default" && malloc_choice != "tuned" && malloc_choice != "both") {
        std::fprintf(stderr, "bench_compare: --malloc must be default, tuned or both, not '%s'\n",
                     malloc_choice.c_str());
        return 2;
    }
    const std::vector<std::string> settings =
        malloc_choice == "both" ? std::vector<std::string>{"default", "tuned"}
                                : std::vector<std::string>{malloc_choice};
    for (const std::string& setting : settings) {
        run_child({"--timings", std::to_string(rounds), setting}, child_environment(setting), /*capture=*/false);
    }
    report_memory(settings);
    return 0;
}
