"""Ready-made models: SimpleCNN, ResNet-18/34 (ImageNet and CIFAR stems), the Keras U-Net,
LSTM models for sequences, seq2seq with attention, a character LM and ConvLSTM."""
from .cnn import SimpleCNN
from .resnet import BasicBlock, ResNet, resnet18, resnet34
from .unet import UNet
from .rnn import LSTMClassifier, LSTMRegressor
from .seq2seq import Attention, Seq2Seq
from .charlm import CharLM
from .convlstm import ConvLSTM, ConvLSTMCell, ConvLSTMForecaster

__all__ = ["SimpleCNN", "BasicBlock", "ResNet", "resnet18", "resnet34", "UNet",
           "LSTMClassifier", "LSTMRegressor",
           "Attention", "Seq2Seq", "CharLM", "ConvLSTMCell", "ConvLSTM", "ConvLSTMForecaster"]
